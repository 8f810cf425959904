package handlers

import "github.com/gin-gonic/gin"

// accessPages are the pages of the admin-only routes.
var accessPages = []string{"admin_keys", "admin_key_created", "admin_settings"}

// accessRoutes registers the admin-only pages: users, API keys, settings.
func (s *Server) accessRoutes(g *gin.RouterGroup) {
	s.userRoutes(g)
	s.keyRoutes(g)      // admin_keys.go
	s.settingsRoutes(g) // admin_settings.go
}
