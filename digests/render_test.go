package digests

import (
	htmltemplate "html/template"
	"strings"
	"testing"

	"herald/templates"
)

// TestFrameMatchesTemplates: filling the once-rendered frame gives exactly
// what executing the templates for that reader gives, escaping included.
func TestFrameMatchesTemplates(t *testing.T) {
	tpl, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	site := templates.Site{Name: "The Daily <Herald>", BaseURL: "https://herald.example.com", PostalAddress: "1 Example St & Co"}
	base := DigestEmail{Site: site, Subject: "Tory & Labour", Intro: "Hello <there>"}
	frame := base
	frame.Email, frame.Followed = phEmail, phFollowed
	frame.UnsubscribeURL, frame.PreferencesURL = phUnsub, phPrefs
	frame.StoryHTML, frame.StoryText = []htmltemplate.HTML{phStories}, []string{phStories}
	fh, ft, err := tpl.Email("digest", frame)
	if err != nil {
		t.Fatal(err)
	}
	e := &edition{frame: templates.NewFrame(fh, ft, placeholders)}
	reader := base
	reader.Email = "o'brien&co+HERALD-PH-STORIES@example.com"
	reader.Followed = "Politics <UK>, World"
	reader.UnsubscribeURL = "https://herald.example.com/unsubscribe/abc_DEF-1"
	reader.PreferencesURL = "https://herald.example.com/preferences/xyz"
	reader.StoryHTML = []htmltemplate.HTML{"<tr><td>One &amp; only</td></tr>", "<tr><td>Two</td></tr>"}
	reader.StoryText = []string{"One & only\n", "Two\n"}
	wantHTML, wantText, err := tpl.Email("digest", reader)
	if err != nil {
		t.Fatal(err)
	}
	gotHTML, gotText := fill(e, &reader)
	// html/template also writes "+" as "&#43;" in text; both read the same.
	wantHTML = strings.ReplaceAll(wantHTML, "&#43;", "+")
	if gotHTML != wantHTML {
		t.Errorf("HTML differs:\n got %q\nwant %q", gotHTML, wantHTML)
	}
	if gotText != wantText {
		t.Errorf("text differs:\n got %q\nwant %q", gotText, wantText)
	}
}

// TestDigestKeepsStylesheet: the digest's head keeps the story styles and
// the small-screen rules that inlining cannot carry.
func TestDigestKeepsStylesheet(t *testing.T) {
	tpl, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	html, _, err := tpl.Email("digest", DigestEmail{Site: templates.Site{Name: "The Daily Herald"}, Subject: "Today"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html, "<style>") || !strings.Contains(html, "@media only screen") || !strings.Contains(html, ".story-title") {
		t.Errorf("the digest lost its stylesheet:\n%s", html)
	}
}
