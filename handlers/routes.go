package handlers

import (
	"net/http"

	"herald/models"
	"herald/templates"
)

// pageNames are the pages the routes render; New fails if one is missing.
func pageNames() []string {
	names := []string{
		"home", "thanks", "demo", "message", "confirm", "unsubscribe", "preferences",
		"admin_login", "admin_setup", "admin_mailbox", "admin_message",
	}
	for _, list := range [][]string{homePages, userPages, digestPages, subscriberPages, contentPages, accessPages} {
		names = append(names, list...)
	}
	return names
}

// routes registers every route Herald serves.
func (s *Server) routes() {
	e := s.engine
	e.Use(s.recoverPanics(), s.logRequests(), s.renderErrors(), s.securityHeaders(), s.bodyLimit())
	e.NoRoute(s.notFound)
	e.NoMethod(s.methodNotAllowed)

	// Operations.
	e.GET("/healthz", s.healthz)
	e.GET("/metrics", s.serveMetrics)

	// The reader's side: signup pages, the form and the JSON API.
	e.GET("/", s.home)
	e.GET("/demo", s.demo)
	e.GET("/thanks", s.thanks)
	e.GET("/widget.js", s.widget)
	e.StaticFS("/static", http.FS(templates.Static()))
	e.POST("/subscribe", s.rateLimit, s.subscribeForm)
	e.OPTIONS("/api/v1/subscribe", s.cors)
	e.POST("/api/v1/subscribe", s.cors, s.rateLimit, s.subscribeJSON)

	// Links in emails: GET shows a page, POST acts.
	e.GET("/confirm/:token", s.confirmPage)
	e.POST("/confirm/:token", s.confirm)
	e.POST("/confirm/:token/resend", s.rateLimit, s.resendConfirmation)
	e.GET("/unsubscribe/:token", s.unsubscribePage)
	e.POST("/unsubscribe/:token", s.unsubscribe)
	e.GET("/preferences/:token", s.preferencesPage)
	e.POST("/preferences/:token", s.savePreferences)
	e.POST("/preferences/:token/unsubscribe", s.unsubscribeAll)
	e.GET("/preferences/:token/export", s.exportData)
	e.POST("/preferences/:token/erase", s.erase)

	// The REST API, with API keys.
	api := e.Group("/api/v1", s.requireAPIKey)
	api.GET("/sections", s.listSections)
	api.POST("/sections", s.createSection)
	api.GET("/stories", s.listStories)
	api.POST("/stories", s.createStory)
	api.GET("/feeds", s.listFeeds)
	api.POST("/feeds", s.createFeed)
	api.POST("/digests", s.createDigest)
	api.GET("/digests/:id", s.getDigest)
	api.POST("/digests/:id/send", s.digestAction("send"))
	api.POST("/digests/:id/pause", s.digestAction("pause"))
	api.POST("/digests/:id/resume", s.digestAction("resume"))
	api.POST("/digests/:id/cancel", s.digestAction("cancel"))
	api.POST("/digests/:id/test", s.testDigest)

	// Admin: login and first-run setup are open; the rest needs a session
	// and, for every state-changing request, the CSRF token.
	e.GET("/admin/login", s.loginPage)
	e.POST("/admin/login", s.loginLimit, s.login)
	e.GET("/admin/setup/:token", s.setupPage)
	e.POST("/admin/setup/:token", s.loginLimit, s.setup)
	admin := e.Group("/admin", s.requireSession, s.requireCSRF)
	admin.POST("/logout", s.logout)
	admin.GET("/mailbox", s.mailbox)
	admin.GET("/mailbox/:id", s.mailboxMessage)
	admin.GET("/mailbox/:id/html", s.mailboxHTML)
	admin.POST("/mailbox/clear", s.clearMailbox)
	s.homeRoutes(admin)       // admin_home.go: dashboard, own account, audit log
	s.digestRoutes(admin)     // admin_digests.go
	s.subscriberRoutes(admin) // admin_subscribers.go
	s.contentRoutes(admin)    // admin_content.go: stories, sections, feeds, embed

	// Users, API keys and settings are for admins only.
	adminOnly := admin.Group("", s.requireRole(models.RoleAdmin))
	s.accessRoutes(adminOnly) // admin_access.go (users), admin_keys.go, admin_settings.go
}
