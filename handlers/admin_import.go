package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"

	"herald/subscribers"
)

// importPageData is the data of the three import pages.
type importPageData struct {
	adminPage
	SendConfirmations bool
	Errors            map[string]string
	MaxBytes          int64
	MaxMB             int64
	Token             string
	Preview           *subscribers.ImportPreview
	Result            *subscribers.ImportResult
	Problems          []subscribers.ImportProblem
	MoreProblems      int
}

// importTTL is how long an uploaded file waits for its confirmation.
const importTTL = time.Hour

var importToken = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (s *Server) importData(c *gin.Context) importPageData {
	return importPageData{adminPage: s.adminBase(c, "subscribers"), MaxBytes: s.d.Config.ImportMaxBytes, MaxMB: max(1, s.d.Config.ImportMaxBytes>>20), Errors: map[string]string{}}
}

func (s *Server) importPage(c *gin.Context) {
	data := s.importData(c)
	if c.Query("error") == "too_big" {
		data.Errors["file"] = s.tooBigMessage()
	}
	s.page(c, http.StatusOK, "admin_import", data)
}

func (s *Server) tooBigMessage() string {
	return fmt.Sprintf("The file is too large: the limit is %d MB (HERALD_IMPORT_MAX_BYTES). Split it and import the parts.",
		max(1, s.d.Config.ImportMaxBytes>>20))
}

// importDir holds uploaded files between preview and confirmation.
func (s *Server) importDir() string { return filepath.Join(s.d.Config.DataDir, "imports") }

// sweepImports deletes uploads older than importTTL. File ages are compared
// with the wall clock, the one the file system stamps them with.
func (s *Server) sweepImports() {
	entries, err := os.ReadDir(s.importDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > importTTL {
			_ = os.Remove(filepath.Join(s.importDir(), e.Name()))
		}
	}
}

// importPreview keeps the uploaded file under a random token and shows what
// importing it would do; nothing is written to the subscribers yet.
func (s *Server) importPreview(c *gin.Context) {
	s.sweepImports()
	data := s.importData(c)
	data.SendConfirmations = c.PostForm("send_confirmations") == "1"
	fail := func(status int, msg string) {
		data.Errors["file"] = msg
		s.page(c, status, "admin_import", data)
	}
	fh, err := c.FormFile("file")
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		fail(http.StatusRequestEntityTooLarge, s.tooBigMessage())
		return
	case err != nil:
		fail(http.StatusUnprocessableEntity, "Choose a CSV file to upload.")
		return
	}
	if fh.Size > s.d.Config.ImportMaxBytes {
		fail(http.StatusRequestEntityTooLarge, s.tooBigMessage())
		return
	}
	in, err := fh.Open()
	if err != nil {
		_ = c.Error(err)
		return
	}
	defer in.Close()
	token, path, err := s.keepUpload(in)
	if err != nil {
		_ = c.Error(err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		_ = c.Error(err)
		return
	}
	defer f.Close()
	p, err := s.d.Subscribers.PreviewImport(c.Request.Context(), f, data.SendConfirmations)
	var ife *subscribers.ImportFileError
	if err != nil {
		_ = os.Remove(path)
		if errors.As(err, &ife) {
			fail(http.StatusUnprocessableEntity, ife.Msg)
			return
		}
		_ = c.Error(err)
		return
	}
	data.Token, data.Preview = token, p
	s.page(c, http.StatusOK, "admin_import_preview", data)
}

// keepUpload copies an upload to a new file named by a random token.
func (s *Server) keepUpload(in io.Reader) (token, path string, err error) {
	if err := os.MkdirAll(s.importDir(), 0o700); err != nil {
		return "", "", fmt.Errorf("import upload: %w", err)
	}
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return "", "", err
	}
	token = hex.EncodeToString(buf)
	path = filepath.Join(s.importDir(), token+".csv")
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", fmt.Errorf("import upload: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		_ = os.Remove(path)
		return "", "", fmt.Errorf("import upload: %w", err)
	}
	if err := out.Close(); err != nil {
		_ = os.Remove(path)
		return "", "", fmt.Errorf("import upload: %w", err)
	}
	return token, path, nil
}

// importConfirm imports a previewed file through subscribers.ImportCSV.
func (s *Server) importConfirm(c *gin.Context) {
	s.sweepImports()
	data := s.importData(c)
	data.SendConfirmations = c.PostForm("send_confirmations") == "1"
	token := c.PostForm("token")
	var f *os.File
	var err error
	path := filepath.Join(s.importDir(), token+".csv")
	if importToken.MatchString(token) {
		f, err = os.Open(path)
	}
	if f == nil || err != nil {
		data.Errors["file"] = "This upload has expired or was imported already. Upload the file again."
		s.page(c, http.StatusUnprocessableEntity, "admin_import", data)
		return
	}
	defer func() { _ = f.Close(); _ = os.Remove(path) }()
	// An import writes in chunks and cannot be undone half way: it runs to
	// the end even if the editor's browser gives up waiting.
	c.Request = c.Request.WithContext(context.WithoutCancel(c.Request.Context()))
	res, err := s.d.Subscribers.ImportCSV(c.Request.Context(), f, subscribers.ImportOptions{
		SendConfirmations: data.SendConfirmations,
		Report: func(line int, msg string) {
			if len(data.Problems) < 50 {
				data.Problems = append(data.Problems, subscribers.ImportProblem{Line: line, Message: msg})
			} else {
				data.MoreProblems++
			}
		},
	})
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.audit(c, "subscriber.import", "subscribers", fmt.Sprintf("imported %d, skipped %d, failed %d, confirmations queued %d",
		res.Imported, res.Skipped, res.Failed, res.Queued))
	data.Result = &res
	s.page(c, http.StatusOK, "admin_import_result", data)
}
