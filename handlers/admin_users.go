package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"herald/accounts"
	"herald/models"
)

// userPages are the pages of userRoutes.
var userPages = []string{"admin_users"}

// userRoutes registers user management (admin only).
func (s *Server) userRoutes(g *gin.RouterGroup) {
	g.GET("/users", s.usersPage)
	g.POST("/users", s.createUser)
	g.POST("/users/:id/role", s.setUserRole)
	g.POST("/users/:id/password", s.resetUserPassword)
	g.POST("/users/:id/delete", s.deleteUser)
}

// usersData is the data of the "admin_users" page.
type usersData struct {
	adminPage
	Users  []models.AdminUser
	Form   newUserForm
	Errors map[string]string
	// RowError is a message about one user's row (RowID).
	RowError string
	RowID    int64
}

type newUserForm struct {
	Email string
	Role  string
}

func (s *Server) renderUsers(c *gin.Context, status int, data usersData) {
	users, err := s.d.Store.AdminUsers(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return
	}
	data.adminPage = s.adminBase(c, "users")
	data.Users = users
	if data.Form.Role == "" {
		data.Form.Role = models.RoleEditor
	}
	s.page(c, status, "admin_users", data)
}

func (s *Server) usersPage(c *gin.Context) { s.renderUsers(c, http.StatusOK, usersData{}) }

// createUser adds a user with a first password the admin hands over; the
// user changes it on their account page.
func (s *Server) createUser(c *gin.Context) {
	form := newUserForm{Email: strings.TrimSpace(c.PostForm("email")), Role: c.PostForm("role")}
	errs := map[string]string{}
	if msg := accounts.ValidateEmail(form.Email); msg != "" {
		errs["email"] = msg
	}
	if form.Role != models.RoleAdmin && form.Role != models.RoleEditor {
		errs["role"] = "Choose admin or editor."
	}
	pw := c.PostForm("password")
	if msg := accounts.ValidatePassword(pw); msg != "" {
		errs["password"] = msg
	}
	if len(errs) == 0 {
		u, err := s.d.Accounts.CreateUser(c.Request.Context(), form.Email, pw, form.Role)
		if err == nil {
			s.audit(c, "user.create", u.Email, "role "+u.Role)
			s.redirectWith(c, "/admin/users", "Added "+u.Email+" as "+u.Role+". Give them their password; they can change it under their account.")
			return
		}
		errs["email"] = userErrMessage(err)
	}
	s.renderUsers(c, http.StatusUnprocessableEntity, usersData{Form: form, Errors: errs})
}

func userErrMessage(err error) string {
	msg := err.Error()
	if msg == "" {
		return "This did not work."
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

func (s *Server) targetUser(c *gin.Context) (*models.AdminUser, bool) {
	id, ok := idParam(c)
	if !ok {
		return nil, false
	}
	u, err := s.d.Store.AdminUserByID(c.Request.Context(), id)
	if err != nil {
		_ = c.Error(err)
		return nil, false
	}
	return u, true
}

func (s *Server) userRowError(c *gin.Context, id int64, msg string) {
	s.renderUsers(c, http.StatusUnprocessableEntity, usersData{RowID: id, RowError: msg})
}

func (s *Server) setUserRole(c *gin.Context) {
	u, ok := s.targetUser(c)
	if !ok {
		return
	}
	role := c.PostForm("role")
	if err := s.d.Accounts.SetRole(c.Request.Context(), u.ID, role); err != nil {
		if errors.Is(err, accounts.ErrLastAdmin) || role != models.RoleAdmin && role != models.RoleEditor {
			s.userRowError(c, u.ID, userErrMessage(err))
			return
		}
		_ = c.Error(err)
		return
	}
	s.audit(c, "user.role", u.Email, u.Role+" → "+role)
	s.redirectWith(c, "/admin/users", u.Email+" is now "+role+".")
}

// resetUserPassword sets a new password for someone who forgot theirs; all
// their sessions end.
func (s *Server) resetUserPassword(c *gin.Context) {
	u, ok := s.targetUser(c)
	if !ok {
		return
	}
	pw := c.PostForm("password")
	if msg := accounts.ValidatePassword(pw); msg != "" {
		s.userRowError(c, u.ID, "New password for "+u.Email+": "+msg)
		return
	}
	if err := s.d.Accounts.SetPassword(c.Request.Context(), u.ID, pw); err != nil {
		_ = c.Error(err)
		return
	}
	s.audit(c, "user.password", u.Email, "password reset by an admin; sessions ended")
	msg := "The password of " + u.Email + " is changed and their sessions are ended."
	if u.ID == currentUser(c).ID {
		// Their own sessions ended too, this one with them.
		s.redirectWith(c, "/admin/login", "")
		return
	}
	s.redirectWith(c, "/admin/users", msg)
}

func (s *Server) deleteUser(c *gin.Context) {
	u, ok := s.targetUser(c)
	if !ok {
		return
	}
	if u.ID == currentUser(c).ID {
		s.userRowError(c, u.ID, "You cannot remove yourself. Ask another admin.")
		return
	}
	if err := s.d.Accounts.DeleteUser(c.Request.Context(), u.ID); err != nil {
		if errors.Is(err, accounts.ErrLastAdmin) {
			s.userRowError(c, u.ID, userErrMessage(err))
			return
		}
		_ = c.Error(err)
		return
	}
	s.audit(c, "user.delete", u.Email, "user #"+strconv.FormatInt(u.ID, 10)+" removed")
	s.redirectWith(c, "/admin/users", u.Email+" can no longer log in.")
}
