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
