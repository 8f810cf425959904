package handlers

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"herald/models"
)

// sectionForm is the typed state of the add and edit section forms.
type sectionForm struct {
	Slug, Name, Description string
}

// sectionsData is the data of "admin_sections" (the list and the add form)
// and "admin_section_form" (edit one).
type sectionsData struct {
	adminPage
	Sections  []models.Section
	Section   *models.Section
	Form      sectionForm
	Errors    map[string]string
	ErrorList []summaryItem
}

var sectionLabels = []string{"slug", "Slug", "name", "Name", "description", "Description"}

func (s *Server) renderSections(c *gin.Context, status int, data sectionsData) {
	secs, err := s.d.Store.Sections(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return
	}
	data.adminPage, data.Sections = s.adminBase(c, "sections"), secs
	data.ErrorList = summaryItems(data.Errors, sectionLabels...)
	s.page(c, status, "admin_sections", data)
}

func (s *Server) adminSectionList(c *gin.Context) { s.renderSections(c, http.StatusOK, sectionsData{}) }

// checkSectionForm holds the rules for a section, for the admin form and
// the API alike; it trims the fields in place.
func checkSectionForm(f *sectionForm, withSlug bool) map[string]string {
	f.Slug, f.Name, f.Description = strings.TrimSpace(f.Slug), strings.TrimSpace(f.Name), strings.TrimSpace(f.Description)
	errs := map[string]string{}
	if withSlug {
		switch {
		case f.Slug == "":
			errs["slug"] = "Enter a slug, like politics-uk."
		case len(f.Slug) > 64 || !slugPattern.MatchString(f.Slug):
			errs["slug"] = "Use 1 to 64 lower-case letters, digits and single hyphens, like politics-uk."
		}
	}
	switch {
	case f.Name == "":
		errs["name"] = "Enter the name readers see, like Politics UK."
	case len(f.Name) > 128 || strings.ContainsAny(f.Name, "\r\n"):
		errs["name"] = "Use one line of at most 128 characters."
	}
	if len(f.Description) > 512 {
		errs["description"] = "Use at most 512 characters."
	}
	return errs
}

func (s *Server) adminSectionCreate(c *gin.Context) {
	f := sectionForm{Slug: formText(c, "slug"), Name: formText(c, "name"), Description: formText(c, "description")}
	errs := checkSectionForm(&f, true)
	if len(errs) == 0 {
		sec := models.Section{Slug: f.Slug, Name: f.Name, Description: f.Description, CreatedAt: s.d.Now().UTC()}
		err := s.d.Store.CreateSection(c.Request.Context(), &sec)
		switch {
		case models.IsUniqueViolation(err):
			errs["slug"] = "Another section has this slug. Choose another."
		case err != nil:
			_ = c.Error(err)
			return
		default:
			s.audit(c, "section.create", "section:"+sec.Slug, sec.Name)
			s.redirectWith(c, "/admin/sections", "Added the section "+sec.Name+".")
			return
		}
	}
	s.renderSections(c, http.StatusUnprocessableEntity, sectionsData{Form: f, Errors: errs})
}

func (s *Server) sectionParam(c *gin.Context) (*models.Section, bool) {
	id, ok := idParam(c)
	if !ok {
		return nil, false
	}
	sec, err := s.d.Store.SectionByID(c.Request.Context(), id)
	if err != nil {
		_ = c.Error(err)
		return nil, false
	}
	return sec, true
}

func (s *Server) renderSectionForm(c *gin.Context, status int, sec *models.Section, f sectionForm, errs map[string]string) {
	s.page(c, status, "admin_section_form", sectionsData{
		adminPage: s.adminBase(c, "sections"), Section: sec, Form: f, Errors: errs,
		ErrorList: summaryItems(errs, sectionLabels...),
	})
}

func (s *Server) adminSectionEdit(c *gin.Context) {
	sec, ok := s.sectionParam(c)
	if !ok {
		return
	}
	s.renderSectionForm(c, http.StatusOK, sec, sectionForm{Slug: sec.Slug, Name: sec.Name, Description: sec.Description}, nil)
}

func (s *Server) adminSectionSave(c *gin.Context) {
	sec, ok := s.sectionParam(c)
	if !ok {
		return
	}
	f := sectionForm{Slug: sec.Slug, Name: formText(c, "name"), Description: formText(c, "description")}
	if errs := checkSectionForm(&f, false); len(errs) > 0 {
		s.renderSectionForm(c, http.StatusUnprocessableEntity, sec, f, errs)
		return
	}
	if err := s.d.Store.UpdateSection(c.Request.Context(), sec.ID, f.Name, f.Description); err != nil {
		_ = c.Error(err)
		return
	}
	s.audit(c, "section.edit", "section:"+sec.Slug, sec.Name+" → "+f.Name)
	s.redirectWith(c, "/admin/sections", "Saved the section "+f.Name+".")
}
