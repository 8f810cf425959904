package subscribers

import (
	"context"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"sync"
	"time"

	"herald/delivery"
	"herald/mailer"
	"herald/models"
	"herald/templates"
)

// MailConfig configures the confirmation and notice emails.
type MailConfig struct {
	Templates *templates.Set
	Tokens    *Tokens
	Site      templates.Site
	From      string
	// ListID is the List-Id value, e.g. "Daily Herald <news.example.com>".
	ListID string
}

// Mails renders the emails of the reader's side (confirmation, "already
// subscribed" notice) for the delivery worker.
type Mails struct {
	cfg    MailConfig
	mu     sync.Mutex
	frames map[string]*templates.Frame
}

// NewMails checks that its templates exist and returns the renderer.
func NewMails(cfg MailConfig) (*Mails, error) {
	if err := cfg.Templates.Require(nil, []string{"confirmation", "notice"}); err != nil {
		return nil, err
	}
	return &Mails{cfg: cfg, frames: map[string]*templates.Frame{}}, nil
}

// EmailData is the data of the confirmation and notice email templates.
type EmailData struct {
	Site           templates.Site
	Email          string
	Sections       []string
	Frequency      string
	ConfirmURL     string
	ExpiresIn      string
	PreferencesURL string
	UnsubscribeURL string
}

// Render implements delivery.Renderer for confirmation and notice deliveries.
func (m *Mails) Render(_ context.Context, d *models.Delivery, sub *models.Subscriber) (*mailer.Message, error) {
	if sub == nil {
		return nil, fmt.Errorf("%s delivery %d has no subscriber", d.Kind, d.ID)
	}
	data := EmailData{Site: m.cfg.Site, Email: sub.Email}
	msg := &mailer.Message{MessageID: d.MessageID, From: m.cfg.From, To: sub.Email}
	switch d.Kind {
	case models.KindConfirmation:
		if sub.Status != models.StatusPending {
			return nil, delivery.ErrSkip
		}
		var cd confirmationData
		if err := json.Unmarshal([]byte(d.Data), &cd); err != nil {
			return nil, fmt.Errorf("confirmation data: %w", err)
		}
		expires := time.Unix(cd.Expires, 0)
		data.Sections = cd.Sections
		data.Frequency = FrequencyLabel(cd.Frequency)
		data.ConfirmURL = m.link("confirm", m.cfg.Tokens.Make(PurposeConfirm, sub.ID, expires))
		data.ExpiresIn = humanDuration(time.Until(expires).Round(time.Hour), expires.Sub(d.CreatedAt))
		msg.Subject = "Confirm your subscription to " + m.cfg.Site.Name
	case models.KindNotice:
		if sub.Status != models.StatusActive {
			return nil, delivery.ErrSkip
		}
		data.PreferencesURL = m.link("preferences", m.cfg.Tokens.Make(PurposePreferences, sub.ID, time.Time{}))
		data.UnsubscribeURL = m.link("unsubscribe", m.cfg.Tokens.Make(PurposeUnsubscribe, sub.ID, time.Time{}))
		msg.Subject = "You're already subscribed to " + m.cfg.Site.Name
		msg.ListUnsubscribe = data.UnsubscribeURL
		msg.ListID = m.cfg.ListID
	default:
		return nil, fmt.Errorf("subscribers: cannot render a %q delivery", d.Kind)
	}
	f, err := m.frame(d.Kind, data)
	if err != nil {
		return nil, err
	}
	esc := htmltemplate.HTMLEscapeString
	msg.HTML, msg.Text = f.Fill(
		map[string]string{phEmail: esc(data.Email), phConfirm: esc(data.ConfirmURL), phPrefs: esc(data.PreferencesURL), phUnsub: esc(data.UnsubscribeURL)},
		map[string]string{phEmail: data.Email, phConfirm: data.ConfirmURL, phPrefs: data.PreferencesURL, phUnsub: data.UnsubscribeURL})
	return msg, nil
}

// Placeholders for each reader's own values in a rendered frame.
const (
	phEmail   = "HERALD-PH-EMAIL"
	phConfirm = "HERALD-PH-CONFIRM"
	phPrefs   = "HERALD-PH-PREFERENCES"
	phUnsub   = "HERALD-PH-UNSUBSCRIBE"
)

var placeholders = []string{phEmail, phConfirm, phPrefs, phUnsub}

// frame returns the email of this kind rendered once for everything but
// the reader's own values: the sections, frequency and link lifetime
// repeat across thousands of signups, so frames are kept by them.
func (m *Mails) frame(kind string, data EmailData) (*templates.Frame, error) {
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%t%t%t", kind, strings.Join(data.Sections, "\x1f"), data.Frequency,
		data.ExpiresIn, data.ConfirmURL != "", data.PreferencesURL != "", data.UnsubscribeURL != "")
	m.mu.Lock()
	f := m.frames[key]
	m.mu.Unlock()
	if f != nil {
		return f, nil
	}
	// Only the values this kind has get a placeholder: the templates test
	// some of them (the footer shows unsubscribe links only when set).
	data.Email = phEmail
	if data.ConfirmURL != "" {
		data.ConfirmURL = phConfirm
	}
	if data.PreferencesURL != "" {
		data.PreferencesURL = phPrefs
	}
	if data.UnsubscribeURL != "" {
		data.UnsubscribeURL = phUnsub
	}
	html, text, err := m.cfg.Templates.Email(kind, data)
	if err != nil {
		return nil, err
	}
	f = templates.NewFrame(html, text, placeholders)
	m.mu.Lock()
	if len(m.frames) >= 1024 { // many distinct section choices: start afresh
		clear(m.frames)
	}
	m.frames[key] = f
	m.mu.Unlock()
	return f, nil
}

func (m *Mails) link(kind, token string) string {
	return m.cfg.Site.BaseURL + "/" + kind + "/" + token
}

// FrequencyLabel names a frequency for readers.
func FrequencyLabel(f string) string {
	switch f {
	case models.FrequencyInstant:
		return "as it happens"
	case models.FrequencyWeekly:
		return "a weekly digest"
	default:
		return "a daily digest"
	}
}

// humanDuration says how long a link lasts, preferring the full lifetime
// (what the reader reads) over the time left at render.
func humanDuration(_ time.Duration, ttl time.Duration) string {
	switch h := int(ttl.Round(time.Hour).Hours()); {
	case h >= 48 && h%24 == 0:
		return fmt.Sprintf("%d days", h/24)
	case h == 24:
		return "24 hours"
	case h >= 1:
		return fmt.Sprintf("%d hours", h)
	default:
		return strings.TrimSuffix(ttl.Round(time.Minute).String(), "0s")
	}
}
