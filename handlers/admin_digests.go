package handlers

import "github.com/gin-gonic/gin"

// digestPages are the pages of this file's routes.
var digestPages = []string{}

// digestRoutes registers this part of the admin side.
func (s *Server) digestRoutes(g *gin.RouterGroup) {}
