package handlers

import "github.com/gin-gonic/gin"

// contentPages are the pages of this file's routes.
var contentPages = []string{}

// contentRoutes registers this part of the admin side.
func (s *Server) contentRoutes(g *gin.RouterGroup) {}
