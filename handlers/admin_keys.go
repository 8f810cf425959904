package handlers

import (
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"herald/models"
)

// apiScopes are the scopes the API checks (every requireScope call in
// api*.go), in the order the key form lists them.
var apiScopes = []struct{ Name, Label string }{
	{"sections:read", "List sections"},
	{"sections:write", "Create sections"},
	{"stories:read", "List stories"},
	{"stories:write", "Push stories"},
	{"feeds:read", "List feeds"},
	{"feeds:write", "Add feeds"},
	{"digests:read", "Read digests and their progress"},
	{"digests:write", "Create, send, pause and cancel digests"},
}

// keyRoutes registers the API keys page (admin only).
func (s *Server) keyRoutes(g *gin.RouterGroup) {
	g.GET("/keys", s.adminKeyList)
	g.POST("/keys", s.adminKeyCreate)
	g.POST("/keys/:id/revoke", s.adminKeyRevoke)
}

// keyForm is the typed state of the new key form.
type keyForm struct {
	Name   string
	Scopes map[string]bool
}

// keysData is the data of "admin_keys" and "admin_key_created".
type keysData struct {
	adminPage
	Keys      []models.APIKey
	Scopes    []struct{ Name, Label string }
	Form      keyForm
	Errors    map[string]string
	ErrorList []summaryItem
	// Key is the new key in full, on "admin_key_created" only: it is shown
	// this once and kept nowhere but as a hash.
	Key     string
	Created *models.APIKey
}

func (s *Server) renderKeys(c *gin.Context, status int, data keysData) {
	keys, err := s.d.Store.APIKeys(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return
	}
	data.adminPage, data.Keys, data.Scopes = s.adminBase(c, "keys"), keys, apiScopes
	if data.Form.Scopes == nil {
		data.Form.Scopes = map[string]bool{}
	}
	data.ErrorList = summaryItems(data.Errors, "name", "Name", "scopes", "Scopes")
	s.page(c, status, "admin_keys", data)
}

func (s *Server) adminKeyList(c *gin.Context) { s.renderKeys(c, http.StatusOK, keysData{}) }

func (s *Server) adminKeyCreate(c *gin.Context) {
	f := keyForm{Name: strings.TrimSpace(formText(c, "name")), Scopes: map[string]bool{}}
	known := map[string]bool{"*": true}
	for _, sc := range apiScopes {
		known[sc.Name] = true
	}
	var scopes []string
	for _, sc := range formList(c, "scopes") {
		if known[sc] && !f.Scopes[sc] {
			f.Scopes[sc] = true
			scopes = append(scopes, sc)
		}
	}
	errs := map[string]string{}
	switch {
	case f.Name == "":
		errs["name"] = "Name the key after what uses it, like “CMS publisher”."
	case utf8.RuneCountInString(f.Name) > 128 || strings.ContainsAny(f.Name, "\r\n"):
		errs["name"] = "Use one line of at most 128 characters."
	}
	if len(scopes) == 0 {
		errs["scopes"] = "Choose what the key may do."
	}
	if len(errs) > 0 {
		s.renderKeys(c, http.StatusUnprocessableEntity, keysData{Form: f, Errors: errs})
		return
	}
	if f.Scopes["*"] {
		scopes = []string{"*"}
	}
	key, k, err := s.d.Accounts.CreateAPIKey(c.Request.Context(), f.Name, strings.Join(scopes, " "))
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.audit(c, "key.create", "key:"+strconv.FormatInt(k.ID, 10), k.Name+" ("+k.Prefix+"…): "+k.Scopes)
	// The page itself carries the key, so no cache may keep it.
	c.Header("Cache-Control", "no-store")
	s.page(c, http.StatusOK, "admin_key_created", keysData{adminPage: s.adminBase(c, "keys"), Key: key, Created: k})
}

func (s *Server) adminKeyRevoke(c *gin.Context) {
	id, ok := idParam(c)
	if !ok {
		return
	}
	if err := s.d.Store.RevokeAPIKey(c.Request.Context(), id, s.d.Now()); err != nil {
		_ = c.Error(err)
		return
	}
	s.audit(c, "key.revoke", "key:"+strconv.FormatInt(id, 10), "")
	s.redirectWith(c, "/admin/keys", "The key is revoked: requests with it now get 401.")
}
