package models

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrStoryURLTaken is returned by UpdateStoryByID when another story
// already has the new URL.
var ErrStoryURLTaken = errors.New("another story has this URL")

// AdminStoryFilter narrows AdminStories. Zero fields do not filter.
type AdminStoryFilter struct {
	SectionID int64
	Origin    string
	// Hidden, when not nil, keeps only hidden (true) or visible (false) stories.
	Hidden *bool
	// Limit caps the number of stories (default 50).
	Limit int
	// AfterPublished and AfterID are a keyset cursor: only stories that
	// come after the story (AfterPublished, AfterID) in the newest-first
	// order. AfterID 0 starts at the newest.
	AfterPublished time.Time
	AfterID        int64
}

// AdminStories lists stories newest first (by published time, then id) for
// the admin list. It pages by keyset, so a deep page costs what the first
// does: the published_at index serves the order and the cursor.
func (s *Store) AdminStories(ctx context.Context, f AdminStoryFilter) ([]Story, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	q := s.r.WithContext(ctx).Model(&Story{})
	if f.SectionID != 0 {
		q = q.Where("id IN (?)", s.r.Model(&StorySection{}).Select("story_id").Where("section_id = ?", f.SectionID))
	}
	if f.Origin != "" {
		q = q.Where("origin = ?", f.Origin)
	}
	if f.Hidden != nil {
		q = q.Where("hidden = ?", *f.Hidden)
	}
	if f.AfterID != 0 {
		at := f.AfterPublished.UTC()
		q = q.Where("published_at < ? OR (published_at = ? AND id < ?)", at, at, f.AfterID)
	}
	var out []Story
	if err := q.Order("published_at DESC, id DESC").Limit(f.Limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("admin stories: %w", err)
	}
	return out, nil
}

// SetStoryHidden hides a story from digests (or shows it again).
func (s *Store) SetStoryHidden(ctx context.Context, id int64, hidden bool, at time.Time) error {
	res := s.w.WithContext(ctx).Model(&Story{}).Where("id = ?", id).
		Updates(map[string]any{"hidden": hidden, "updated_at": at.UTC()})
	if res.Error != nil {
		return fmt.Errorf("set story hidden: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// UpdateStoryByID rewrites the story id with st's fields and files it under
// exactly sectionIDs, as UpsertStory updates a story: origin, feed and
// hidden stay as they were, and a zero PublishedAt keeps the stored time.
// A URL that another story has is ErrStoryURLTaken. On return st holds the
// stored row.
func (s *Store) UpdateStoryByID(ctx context.Context, id int64, st *Story, sectionIDs []int64) error {
	sectionIDs = uniqueIDs(sectionIDs)
	return s.Tx(ctx, func(tx *Store) error {
		old, err := tx.lockStory(ctx, "id = ?", id)
		if err != nil {
			return err
		}
		if old == nil {
			return ErrNotFound
		}
		if st.URL != old.URL {
			var taken int64
			if err := tx.w.WithContext(ctx).Model(&Story{}).Where("url = ? AND id <> ?", st.URL, id).Count(&taken).Error; err != nil {
				return fmt.Errorf("update story: %w", err)
			}
			if taken > 0 {
				return ErrStoryURLTaken
			}
		}
		return tx.updateStory(ctx, old, st, sectionIDs)
	})
}

// SectionByID returns one section.
func (s *Store) SectionByID(ctx context.Context, id int64) (*Section, error) {
	var sec Section
	if err := s.r.WithContext(ctx).First(&sec, id).Error; err != nil {
		return nil, notFound(err)
	}
	return &sec, nil
}

// UpdateSection changes a section's name and description. Its slug stays:
// sites' forms, API clients and digests name sections by slug.
func (s *Store) UpdateSection(ctx context.Context, id int64, name, description string) error {
	res := s.w.WithContext(ctx).Model(&Section{}).Where("id = ?", id).
		Updates(map[string]any{"name": name, "description": description})
	if res.Error != nil {
		return fmt.Errorf("update section: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// FeedChange is what an editor may change on a feed.
type FeedChange struct {
	URL          string
	SectionID    int64
	CategoryMap  string
	PollInterval int // seconds
}

// UpdateFeed applies c to the feed id. A new URL is a new document: its
// validators and failure count are cleared and it is due for a poll at now.
// A URL another feed has is reported by IsUniqueViolation.
func (s *Store) UpdateFeed(ctx context.Context, id int64, c FeedChange, now time.Time) error {
	return s.Tx(ctx, func(tx *Store) error {
		var old Feed
		if err := tx.w.WithContext(ctx).First(&old, id).Error; err != nil {
			return notFound(err)
		}
		updates := map[string]any{
			"section_id": c.SectionID, "category_map": c.CategoryMap, "poll_interval": c.PollInterval,
		}
		if c.URL != old.URL {
			updates["url"] = c.URL
			updates["e_tag"] = ""
			updates["last_modified"] = ""
			updates["failures"] = 0
			updates["next_poll_at"] = now.UTC()
		}
		if err := tx.w.WithContext(ctx).Model(&Feed{}).Where("id = ?", id).Updates(updates).Error; err != nil {
			return fmt.Errorf("update feed: %w", err)
		}
		return nil
	})
}

// PollFeedNow makes a feed due for a poll at now.
func (s *Store) PollFeedNow(ctx context.Context, id int64, now time.Time) error {
	res := s.w.WithContext(ctx).Model(&Feed{}).Where("id = ?", id).Update("next_poll_at", now.UTC())
	if res.Error != nil {
		return fmt.Errorf("poll feed now: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}
