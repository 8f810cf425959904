package handlers

import "github.com/gin-gonic/gin"

// subscriberPages are the pages of this file's routes.
var subscriberPages = []string{}

// subscriberRoutes registers this part of the admin side.
func (s *Server) subscriberRoutes(g *gin.RouterGroup) {}
