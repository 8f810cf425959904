package digests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	htmltemplate "html/template"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/microcosm-cc/bluemonday"

	"herald/delivery"
	"herald/mailer"
	"herald/models"
	"herald/templates"
)

// RenderConfig configures the digest renderer.
type RenderConfig struct {
	Store     *models.Store
	Templates *templates.Set
	Site      templates.Site
	From      string
	// ListID is the List-Id value.
	ListID string
	// Links returns a subscriber's one-click unsubscribe and preference
	// centre URLs (the tokens belong to the subscribers package).
	Links    func(subscriberID int64) (unsubscribe, preferences string)
	Location *time.Location
}

// Renderer renders digest and test deliveries. The parts every reader of a
// digest shares (each story's block) are rendered once per digest and
// kept; each message only picks and joins its reader's blocks.
type Renderer struct {
	cfg   RenderConfig
	strip *bluemonday.Policy
	mu    sync.Mutex
	cache map[int64]*edition
	// follows holds the subscriptions PrepareBatch loaded for a claimed
	// batch; each entry is used once.
	fmu     sync.Mutex
	follows map[int64][]models.SubscriptionView
}

// edition is a digest with its story blocks rendered.
type edition struct {
	digest   *models.Digest
	freqs    []string
	audience map[int64]bool // section ids; nil means every section
	stories  []block
	names    map[int64]string
	loaded   time.Time
	// frame is the whole email rendered once with placeholders where each
	// reader's own values go.
	frame *templates.Frame
}

// Placeholders in an edition's frame; a single-pass replacement puts each
// reader's values in, so a value that happens to contain one is not
// replaced again.
const (
	phEmail    = "HERALD-PH-EMAIL"
	phFollowed = "HERALD-PH-FOLLOWED"
	phUnsub    = "HERALD-PH-UNSUBSCRIBE"
	phPrefs    = "HERALD-PH-PREFERENCES"
	phStories  = "HERALD-PH-STORIES"
)

var placeholders = []string{phEmail, phFollowed, phUnsub, phPrefs, phStories}

type block struct {
	storyID  int64
	sections []int64
	html     htmltemplate.HTML
	text     string
}

// StoryView is what the story block templates see.
type StoryView struct {
	Title       string
	URL         string
	Summary     htmltemplate.HTML
	SummaryText string
	ImageURL    string
	Author      string
	Published   string
	Sections    string
}

// DigestEmail is the data of the digest email template.
type DigestEmail struct {
	Site           templates.Site
	Subject        string
	Intro          string
	Email          string
	Followed       string
	StoryHTML      []htmltemplate.HTML
	StoryText      []string
	UnsubscribeURL string
	PreferencesURL string
}

// testData is what a test delivery carries.
type testData struct {
	DigestID     int64 `json:"digest_id"`
	AsSubscriber int64 `json:"as_subscriber_id,omitempty"`
}

// NewRenderer checks the digest templates exist and returns the renderer.
func NewRenderer(cfg RenderConfig) (*Renderer, error) {
	if err := cfg.Templates.Require(nil, []string{"digest"}); err != nil {
		return nil, err
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	return &Renderer{cfg: cfg, strip: bluemonday.StrictPolicy(), cache: map[int64]*edition{},
		follows: map[int64][]models.SubscriptionView{}}, nil
}

// editionTTL bounds how long rendered blocks are reused, so an editor's
// correction to a story reaches the rest of a send.
const editionTTL = time.Minute

func (r *Renderer) edition(ctx context.Context, digestID int64) (*edition, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.cache[digestID]; e != nil && time.Since(e.loaded) < editionTTL {
		return e, nil
	}
	d, err := r.cfg.Store.DigestByID(ctx, digestID)
	if err != nil {
		return nil, err
	}
	ids, err := r.cfg.Store.DigestStoryIDs(ctx, digestID)
	if err != nil {
		return nil, err
	}
	stories, err := r.cfg.Store.StoriesByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	secs, err := r.cfg.Store.StorySectionIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	all, err := r.cfg.Store.Sections(ctx)
	if err != nil {
		return nil, err
	}
	e := &edition{digest: d, freqs: strings.Fields(d.Frequencies), names: map[int64]string{}, loaded: time.Now()}
	bySlug := map[string]int64{}
	for _, s := range all {
		e.names[s.ID] = s.Name
		bySlug[s.Slug] = s.ID
	}
	if d.Sections != "" {
		e.audience = map[int64]bool{}
		for _, slug := range strings.Fields(d.Sections) {
			if id, ok := bySlug[slug]; ok {
				e.audience[id] = true
			}
		}
	}
	if e.stories, err = r.blocks(ids, stories, secs, e.names); err != nil {
		return nil, err
	}
	frame := DigestEmail{Site: r.cfg.Site, Subject: d.Subject, Intro: d.Intro, Email: phEmail, Followed: phFollowed,
		StoryHTML: []htmltemplate.HTML{phStories}, StoryText: []string{phStories}, UnsubscribeURL: phUnsub, PreferencesURL: phPrefs}
	frameHTML, frameText, err := r.cfg.Templates.Email("digest", frame)
	if err != nil {
		return nil, err
	}
	// CSS is inlined once per edition, on the frame and on each block.
	if frameHTML, err = templates.Inline(frameHTML); err != nil {
		return nil, err
	}
	e.frame = templates.NewFrame(frameHTML, frameText, placeholders)
	r.cache[digestID] = e
	// Keep the cache small: editions of finished sends are dropped.
	if len(r.cache) > 64 {
		for id, old := range r.cache {
			if time.Since(old.loaded) >= editionTTL {
				delete(r.cache, id)
			}
		}
	}
	return e, nil
}

// blocks renders the story blocks of these stories, in order.
func (r *Renderer) blocks(ids []int64, stories map[int64]*models.Story, secs map[int64][]int64, names map[int64]string) ([]block, error) {
	var out []block
	for _, id := range ids {
		st := stories[id]
		if st == nil || st.Hidden {
			continue
		}
		b := block{storyID: id, sections: secs[id]}
		var secNames []string
		for _, sid := range b.sections {
			secNames = append(secNames, names[sid])
		}
		sort.Strings(secNames)
		view := StoryView{
			Title: st.Title, URL: st.URL, Summary: htmltemplate.HTML(st.Summary), //nolint:gosec // sanitised at ingest
			SummaryText: strings.Join(strings.Fields(html.UnescapeString(r.strip.Sanitize(st.Summary))), " "),
			ImageURL:    st.ImageURL, Author: st.Author, Sections: strings.Join(secNames, ", "),
			Published: st.PublishedAt.In(r.cfg.Location).Format("2 Jan 2006 15:04"),
		}
		var err error
		if b.html, b.text, err = r.cfg.Templates.EmailPart("digest", "digest_story", view); err != nil {
			return nil, err
		}
		inlined, err := r.cfg.Templates.InlineFragment("digest", string(b.html))
		if err != nil {
			return nil, err
		}
		b.html = htmltemplate.HTML(inlined) //nolint:gosec // our own rendered block
		out = append(out, b)
	}
	return out, nil
}

// carried returns the blocks of stories the alert cap held back from this
// reader, which ride along with their next alert.
func (r *Renderer) carried(ctx context.Context, e *edition, sub *models.Subscriber, deliveryID int64) ([]block, error) {
	ids, err := r.cfg.Store.CarriedAlertStories(ctx, sub.ID, deliveryID)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	ids = dedupeIDs(ids)
	stories, err := r.cfg.Store.StoriesByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	secs, err := r.cfg.Store.StorySectionIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	return r.blocks(ids, stories, secs, e.names)
}

// Render implements delivery.Renderer for digest and test deliveries.
func (r *Renderer) Render(ctx context.Context, d *models.Delivery, sub *models.Subscriber) (*mailer.Message, error) {
	var digestID int64
	reader := sub
	switch d.Kind {
	case models.KindDigest:
		if d.DigestID == nil || sub == nil {
			return nil, fmt.Errorf("digest delivery %d has no digest or subscriber", d.ID)
		}
		if sub.Status != models.StatusActive {
			return nil, delivery.ErrSkip
		}
		digestID = *d.DigestID
	case models.KindTest:
		var td testData
		if err := json.Unmarshal([]byte(d.Data), &td); err != nil || td.DigestID == 0 {
			return nil, fmt.Errorf("test delivery %d: bad data", d.ID)
		}
		digestID = td.DigestID
		reader = nil
		if td.AsSubscriber != 0 {
			s, err := r.cfg.Store.SubscriberByID(ctx, td.AsSubscriber)
			if err != nil {
				return nil, err
			}
			reader = s
		}
	default:
		return nil, fmt.Errorf("digests: cannot render a %q delivery", d.Kind)
	}
	e, err := r.edition(ctx, digestID)
	if err != nil {
		return nil, err
	}
	picked, followed, err := r.pick(ctx, e, reader)
	if err != nil {
		return nil, err
	}
	if e.digest.Kind == models.DigestAlert && d.Kind == models.KindDigest && len(picked) > 0 {
		more, err := r.carried(ctx, e, reader, d.ID)
		if err != nil {
			return nil, err
		}
		seen := map[int64]bool{}
		for _, b := range picked {
			seen[b.storyID] = true
		}
		for _, b := range more {
			if !seen[b.storyID] {
				seen[b.storyID] = true
				picked = append(picked, b)
			}
		}
	}
	if len(picked) == 0 {
		if d.Kind == models.KindTest {
			return nil, errors.New("the chosen reader follows none of this digest's stories")
		}
		return nil, delivery.ErrSkip
	}
	data := DigestEmail{Site: r.cfg.Site, Subject: e.digest.Subject, Intro: e.digest.Intro, Followed: followed}
	for _, b := range picked {
		data.StoryHTML = append(data.StoryHTML, b.html)
		data.StoryText = append(data.StoryText, b.text)
	}
	msg := &mailer.Message{
		From: r.cfg.From, Subject: e.digest.Subject, ListID: r.cfg.ListID,
		FeedbackID: fmt.Sprintf("digest%d:%s:newsletter:herald", e.digest.ID, e.digest.Kind),
	}
	if reader != nil {
		data.Email = reader.Email
		data.UnsubscribeURL, data.PreferencesURL = r.cfg.Links(reader.ID)
	} else {
		// A test without a chosen reader: the footnote names the address
		// the test goes to, so it still reads as a sentence.
		data.Email = d.ToAddress
		data.UnsubscribeURL, data.PreferencesURL = r.cfg.Site.BaseURL+"/unsubscribe/TEST", r.cfg.Site.BaseURL+"/preferences/TEST"
	}
	if d.Kind == models.KindTest {
		msg.Subject = "[Test] " + msg.Subject
	}
	msg.ListUnsubscribe = data.UnsubscribeURL
	data.Subject = msg.Subject
	if d.Kind == models.KindTest {
		if msg.HTML, msg.Text, err = r.cfg.Templates.Email("digest", data); err != nil {
			return nil, err
		}
		return msg, nil
	}
	msg.HTML, msg.Text = fill(e, &data)
	return msg, nil
}

// fill puts a reader's values into the edition's frame: the same result as
// executing the templates, at a fraction of the cost.
func fill(e *edition, data *DigestEmail) (string, string) {
	esc := htmltemplate.HTMLEscapeString
	var h, t strings.Builder
	for _, b := range data.StoryHTML {
		h.WriteString(string(b))
	}
	for i, s := range data.StoryText {
		if i > 0 {
			t.WriteString("\n")
		}
		t.WriteString(s)
	}
	return e.frame.Fill(
		map[string]string{phEmail: esc(data.Email), phFollowed: esc(data.Followed), phUnsub: esc(data.UnsubscribeURL),
			phPrefs: esc(data.PreferencesURL), phStories: h.String()},
		map[string]string{phEmail: data.Email, phFollowed: data.Followed, phUnsub: data.UnsubscribeURL,
			phPrefs: data.PreferencesURL, phStories: t.String()})
}

// PrepareBatch loads the subscriptions of a claimed batch's readers in one
// query (delivery.BatchPreparer).
func (r *Renderer) PrepareBatch(ctx context.Context, ds []models.Delivery, _ map[int64]*models.Subscriber) error {
	var ids []int64
	for _, d := range ds {
		if d.Kind == models.KindDigest && d.SubscriberID != nil {
			ids = append(ids, *d.SubscriberID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	subs, err := r.cfg.Store.SubscriptionsOf(ctx, ids)
	if err != nil {
		return err
	}
	r.fmu.Lock()
	defer r.fmu.Unlock()
	if len(r.follows) > 10000 { // entries never used (a render failed early): start afresh
		clear(r.follows)
	}
	for _, id := range ids {
		r.follows[id] = subs[id] // nil for a reader with no subscriptions: still known
	}
	return nil
}

// followed returns the section ids a reader follows at one of freqs, from
// the prefetched batch when there, else from the database.
func (r *Renderer) followed(ctx context.Context, subscriberID int64, freqs []string) ([]int64, error) {
	r.fmu.Lock()
	views, ok := r.follows[subscriberID]
	delete(r.follows, subscriberID)
	r.fmu.Unlock()
	if !ok {
		bySub, err := r.cfg.Store.SubscriptionSections(ctx, []int64{subscriberID}, freqs)
		return bySub[subscriberID], err
	}
	var out []int64
	for _, v := range views {
		for _, f := range freqs {
			if v.Frequency == f {
				out = append(out, v.SectionID)
				break
			}
		}
	}
	return out, nil
}

// pick returns the blocks this reader gets: stories in a section they
// follow at one of the digest's frequencies (and in its audience), each
// story once even when it is in two of their sections. A nil reader (a
// test send with no chosen reader) gets every story.
func (r *Renderer) pick(ctx context.Context, e *edition, reader *models.Subscriber) ([]block, string, error) {
	if reader == nil {
		return e.stories, "every section", nil
	}
	sections, err := r.followed(ctx, reader.ID, e.freqs)
	if err != nil {
		return nil, "", err
	}
	follows := map[int64]bool{}
	var names []string
	for _, sid := range sections {
		if e.audience == nil || e.audience[sid] {
			follows[sid] = true
			names = append(names, e.names[sid])
		}
	}
	sort.Strings(names)
	var out []block
	for _, b := range e.stories {
		for _, sid := range b.sections {
			if follows[sid] {
				out = append(out, b)
				break
			}
		}
	}
	return out, strings.Join(names, ", "), nil
}
