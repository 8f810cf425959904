package handlers

import "github.com/gin-gonic/gin"

// accessPages are the pages of the admin-only routes.
var accessPages = []string{}

// accessRoutes registers the admin-only pages: users, API keys, settings.
func (s *Server) accessRoutes(g *gin.RouterGroup) {
	s.userRoutes(g)
	s.keyRoutes(g)
	s.settingsRoutes(g)
}

func (s *Server) keyRoutes(g *gin.RouterGroup)      {}
func (s *Server) settingsRoutes(g *gin.RouterGroup) {}
