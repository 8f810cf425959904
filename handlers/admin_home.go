package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// homePages are the pages of homeRoutes.
var homePages = []string{"admin_dashboard"}

// homeRoutes registers the dashboard, the user's own account and the audit log.
func (s *Server) homeRoutes(g *gin.RouterGroup) {
	g.GET("", s.dashboard)
}

func (s *Server) dashboard(c *gin.Context) {
	s.page(c, http.StatusOK, "admin_dashboard", s.adminBase(c, "dashboard"))
}
