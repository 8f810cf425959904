package handlers

import "github.com/gin-gonic/gin"

func (s *Server) userRoutes(g *gin.RouterGroup) {}
