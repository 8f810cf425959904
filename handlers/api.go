package handlers

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"herald/accounts"
	"herald/models"
)

const ctxAPIKey = "api_key"

// requireAPIKey authenticates "Authorization: Bearer KEY"; 401 otherwise.
func (s *Server) requireAPIKey(c *gin.Context) {
	auth := c.GetHeader("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || key == "" {
		c.Header("WWW-Authenticate", `Bearer realm="herald"`)
		_ = c.Error(errStatus(http.StatusUnauthorized, "Send an API key: Authorization: Bearer KEY."))
		c.Abort()
		return
	}
	k, err := s.d.Accounts.AuthenticateKey(c.Request.Context(), strings.TrimSpace(key))
	if err != nil {
		if errors.Is(err, accounts.ErrBadKey) {
			c.Header("WWW-Authenticate", `Bearer realm="herald", error="invalid_token"`)
			_ = c.Error(errStatus(http.StatusUnauthorized, "The API key is not valid."))
		} else {
			_ = c.Error(err)
		}
		c.Abort()
		return
	}
	c.Set(ctxAPIKey, k)
	c.Next()
}

func requireScope(c *gin.Context, scope string) bool {
	k := c.MustGet(ctxAPIKey).(*models.APIKey)
	if !accounts.HasScope(k, scope) {
		_ = c.Error(errStatus(http.StatusForbidden, "This API key may not "+scope+"."))
		return false
	}
	return true
}

// sectionJSON is a section as the API shows it.
type sectionJSON struct {
	ID          int64     `json:"id"`
	Slug        string    `json:"slug"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

func toSectionJSON(s models.Section) sectionJSON {
	return sectionJSON{ID: s.ID, Slug: s.Slug, Name: s.Name, Description: s.Description, CreatedAt: s.CreatedAt}
}

func (s *Server) listSections(c *gin.Context) {
	if !requireScope(c, "sections:read") {
		return
	}
	secs, err := s.d.Store.Sections(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return
	}
	out := make([]sectionJSON, 0, len(secs))
	for _, sec := range secs {
		out = append(out, toSectionJSON(sec))
	}
	c.JSON(http.StatusOK, gin.H{"sections": out})
}

// createSectionRequest is the body of POST /api/v1/sections.
type createSectionRequest struct {
	Slug        string `json:"slug"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

var slugPattern = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

func (s *Server) createSection(c *gin.Context) {
	if !requireScope(c, "sections:write") {
		return
	}
	var r createSectionRequest
	if err := c.ShouldBindJSON(&r); err != nil {
		_ = c.Error(jsonError(err))
		return
	}
	f := sectionForm{Slug: r.Slug, Name: r.Name, Description: r.Description}
	fields := checkSectionForm(&f, true)
	r.Slug, r.Name, r.Description = f.Slug, f.Name, f.Description
	if len(fields) > 0 {
		_ = c.Error(&httpError{status: http.StatusUnprocessableEntity, msg: "Please correct the highlighted fields.", fields: fields})
		return
	}
	sec := models.Section{Slug: r.Slug, Name: r.Name, Description: r.Description, CreatedAt: s.d.Now().UTC()}
	if err := s.d.Store.CreateSection(c.Request.Context(), &sec); err != nil {
		if models.IsUniqueViolation(err) {
			_ = c.Error(&httpError{status: http.StatusConflict, msg: "A section with this slug exists.", fields: map[string]string{"slug": "is taken"}})
			return
		}
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusCreated, toSectionJSON(sec))
}
