package subscribers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"herald/models"
	"herald/templates"
)

// TestMailFramesMatchTemplates: confirmation and notice emails filled in
// from a cached frame are exactly what executing the templates gives.
func TestMailFramesMatchTemplates(t *testing.T) {
	tpl, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	tokens := NewTokens([]byte(strings.Repeat("k", 32)))
	site := templates.Site{Name: "The Daily <Herald>", BaseURL: "https://herald.example.com", PostalAddress: "1 Example St & Co"}
	m, err := NewMails(MailConfig{Templates: tpl, Tokens: tokens, Site: site, From: "news@example.com", ListID: "x <y.example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	data, _ := json.Marshal(confirmationData{Sections: []string{"Politics <UK>", "World"}, Frequency: "daily", Expires: now.Add(72 * time.Hour).Unix()})
	for _, email := range []string{"reader@example.com", "o'brien&co@example.com", "HERALD-PH-CONFIRM@example.com"} {
		for _, tc := range []struct {
			kind, status string
		}{{models.KindConfirmation, models.StatusPending}, {models.KindNotice, models.StatusActive}} {
			sub := &models.Subscriber{ID: 42, Email: email, Status: tc.status}
			d := &models.Delivery{ID: 1, Kind: tc.kind, Data: string(data), CreatedAt: now, MessageID: "m@example.com"}
			for i := 0; i < 2; i++ { // the second render comes from the cached frame
				msg, err := m.Render(context.Background(), d, sub)
				if err != nil {
					t.Fatal(err)
				}
				want := EmailData{Site: site, Email: email}
				if tc.kind == models.KindConfirmation {
					want.Sections, want.Frequency = []string{"Politics <UK>", "World"}, FrequencyLabel("daily")
					want.ConfirmURL = m.link("confirm", tokens.Make(PurposeConfirm, 42, time.Unix(now.Add(72*time.Hour).Unix(), 0)))
					want.ExpiresIn = "3 days"
				} else {
					want.PreferencesURL = m.link("preferences", tokens.Make(PurposePreferences, 42, time.Time{}))
					want.UnsubscribeURL = m.link("unsubscribe", tokens.Make(PurposeUnsubscribe, 42, time.Time{}))
				}
				wantHTML, wantText, err := tpl.Email(tc.kind, want)
				if err != nil {
					t.Fatal(err)
				}
				if msg.HTML != wantHTML || msg.Text != wantText {
					t.Fatalf("%s for %s (render %d) differs from the templates:\nhtml %q\nwant %q", tc.kind, email, i+1, msg.HTML, wantHTML)
				}
			}
		}
	}
}

// TestMailsCarryNoDigestStylesheet: confirmations and notices are sent
// without the digest's stylesheet (which styles nothing in them; digests
// keep it, see digests.TestDigestKeepsStylesheet), and a site without a postal address gets no dangling separator.
func TestMailsCarryNoDigestStylesheet(t *testing.T) {
	tpl, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	data := EmailData{Site: templates.Site{Name: "The Daily Herald", BaseURL: "https://herald.example.com"},
		Email: "reader@example.com", Sections: []string{"World"}, ConfirmURL: "https://herald.example.com/confirm/x",
		UnsubscribeURL: "https://herald.example.com/unsubscribe/x", PreferencesURL: "https://herald.example.com/preferences/x"}
	for _, kind := range []string{models.KindConfirmation, models.KindNotice} {
		html, text, err := tpl.Email(kind, data)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(html, "<style") || strings.Contains(html, ".story") {
			t.Errorf("%s carries the digest stylesheet:\n%s", kind, html)
		}
		if !strings.Contains(html, ">The Daily Herald</p>") || !strings.HasSuffix(strings.TrimSpace(text), "\nThe Daily Herald") {
			t.Errorf("%s footer without a postal address is not the bare site name:\n%s\n%s", kind, html, text)
		}
	}
	data.Site.PostalAddress = "1 Example St"
	html, text, err := tpl.Email(models.KindNotice, data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html, "The Daily Herald · 1 Example St</p>") || !strings.Contains(text, "The Daily Herald · 1 Example St") {
		t.Errorf("notice footer lacks the postal address:\n%s\n%s", html, text)
	}
}
