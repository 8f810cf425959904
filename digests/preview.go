package digests

import (
	"context"
	"errors"
	"sort"
	"strings"

	"herald/models"
)

// ErrNothingForReader: the chosen reader follows none of the sections of
// the digest's stories at its frequencies, so a send would skip them.
var ErrNothingForReader = errors.New("this reader would receive none of this digest's stories")

// Preview is one reader's copy of a digest, as a send would make it.
type Preview struct {
	Subject string
	HTML    string
	Text    string
	// Followed names the sections the copy was picked for.
	Followed string
}

// Preview renders a digest as reader would receive it: their own stories,
// greeting and links, through the same frame and story blocks as a send.
// A nil reader stands for one who follows every section of the audience
// at the digest's frequencies; their address and links are placeholders.
func (r *Renderer) Preview(ctx context.Context, digestID int64, reader *models.Subscriber) (*Preview, error) {
	e, err := r.edition(ctx, digestID)
	if err != nil {
		return nil, err
	}
	data := DigestEmail{Site: r.cfg.Site, Subject: e.digest.Subject, Intro: e.digest.Intro}
	var picked []block
	if reader == nil {
		picked, data.Followed = r.audienceBlocks(e)
		data.Email = "reader@example.com"
		data.UnsubscribeURL, data.PreferencesURL = r.cfg.Site.BaseURL+"/unsubscribe/PREVIEW", r.cfg.Site.BaseURL+"/preferences/PREVIEW"
	} else {
		if picked, data.Followed, err = r.pick(ctx, e, reader); err != nil {
			return nil, err
		}
		data.Email = reader.Email
		data.UnsubscribeURL, data.PreferencesURL = r.cfg.Links(reader.ID)
	}
	if len(picked) == 0 {
		return nil, ErrNothingForReader
	}
	for _, b := range picked {
		data.StoryHTML = append(data.StoryHTML, b.html)
		data.StoryText = append(data.StoryText, b.text)
	}
	p := &Preview{Subject: e.digest.Subject, Followed: data.Followed}
	p.HTML, p.Text = fill(e, &data)
	return p, nil
}

// audienceBlocks returns the stories a reader of every audience section
// gets, and the names of those sections.
func (r *Renderer) audienceBlocks(e *edition) ([]block, string) {
	if e.audience == nil {
		return e.stories, "every section"
	}
	var names []string
	for id := range e.audience {
		names = append(names, e.names[id])
	}
	sort.Strings(names)
	var out []block
	for _, b := range e.stories {
		for _, sid := range b.sections {
			if e.audience[sid] {
				out = append(out, b)
				break
			}
		}
	}
	return out, strings.Join(names, ", ")
}
