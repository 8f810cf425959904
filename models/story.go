package models

import (
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm/clause"
)

// StoryFilter narrows ListStories. Zero fields do not filter.
type StoryFilter struct {
	SectionID int64
	Origin    string
	// Limit caps the number of stories (default 50).
	Limit int
	// BeforeID pages on: only stories that come after this one in the
	// newest-first order.
	BeforeID int64
}

// UpsertStory writes st and files it under exactly sectionIDs, in one
// transaction. The story it updates, if any, is the one of the same feed
// with st's GUID (when st has a FeedID and a GUID), else the one with st's
// URL; otherwise it inserts st and reports created. An update rewrites the
// title, summary, image, author and published time (a zero PublishedAt
// keeps the stored one), takes st's URL when it is free, and leaves origin,
// feed, breaking and hidden as they were; an update that would change
// nothing writes nothing. On return st holds the stored row.
//
// Two concurrent upserts of one URL never make two rows: the insert yields
// to the unique index (ON CONFLICT DO NOTHING) and the loser updates the
// winner's row.
func (s *Store) UpsertStory(ctx context.Context, st *Story, sectionIDs []int64) (created bool, err error) {
	sectionIDs = uniqueIDs(sectionIDs)
	err = s.Tx(ctx, func(tx *Store) error {
		existing, err := tx.findStoryForUpsert(ctx, st)
		if err != nil {
			return err
		}
		if existing == nil {
			if st.PublishedAt.IsZero() {
				st.PublishedAt = st.CreatedAt
			}
			res := tx.w.WithContext(ctx).Clauses(clause.OnConflict{
				Columns: []clause.Column{{Name: "url"}}, DoNothing: true,
			}).Create(st)
			if res.Error != nil {
				return fmt.Errorf("insert story: %w", res.Error)
			}
			if res.RowsAffected == 1 && st.ID != 0 {
				created = true
				return tx.insertStorySections(ctx, st.ID, sectionIDs)
			}
			// Another transaction inserted this URL since we looked.
			st.ID = 0
			if existing, err = tx.lockStory(ctx, "url = ?", st.URL); err != nil {
				return err
			}
			if existing == nil {
				return fmt.Errorf("insert story: %s conflicted but cannot be found", st.URL)
			}
		}
		return tx.updateStory(ctx, existing, st, sectionIDs)
	})
	return created, err
}

// findStoryForUpsert returns the story st would update, locked on Postgres,
// or nil.
func (s *Store) findStoryForUpsert(ctx context.Context, st *Story) (*Story, error) {
	if st.FeedID != nil && st.GUID != "" {
		found, err := s.lockStory(ctx, "feed_id = ? AND guid = ?", *st.FeedID, st.GUID)
		if err != nil || found != nil {
			return found, err
		}
	}
	return s.lockStory(ctx, "url = ?", st.URL)
}

func (s *Store) lockStory(ctx context.Context, where string, args ...any) (*Story, error) {
	q := s.w.WithContext(ctx).Where(where, args...).Order("id")
	if s.postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var rows []Story
	if err := q.Limit(1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find story: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0], nil
}

// updateStory applies st to the stored row old and copies the result to st.
func (s *Store) updateStory(ctx context.Context, old, st *Story, sectionIDs []int64) error {
	db := s.w.WithContext(ctx)
	updates := map[string]any{}
	set := func(col string, changed bool, v any) {
		if changed {
			updates[col] = v
		}
	}
	if st.URL != old.URL {
		var taken int64
		if err := db.Model(&Story{}).Where("url = ? AND id <> ?", st.URL, old.ID).Count(&taken).Error; err != nil {
			return fmt.Errorf("update story: %w", err)
		}
		set("url", taken == 0, st.URL)
	}
	set("title", st.Title != old.Title, st.Title)
	set("summary", st.Summary != old.Summary, st.Summary)
	set("image_url", st.ImageURL != old.ImageURL, st.ImageURL)
	set("author", st.Author != old.Author, st.Author)
	set("guid", old.GUID == "" && st.GUID != "", st.GUID)
	set("published_at", !st.PublishedAt.IsZero() && !st.PublishedAt.Equal(old.PublishedAt), st.PublishedAt)

	current, err := s.StorySectionIDs(ctx, []int64{old.ID})
	if err != nil {
		return err
	}
	have := uniqueIDs(current[old.ID])
	sectionsChanged := !slices.Equal(have, sectionIDs)

	if len(updates) > 0 || sectionsChanged {
		updatedAt := st.UpdatedAt
		if updatedAt.IsZero() {
			updatedAt = time.Now().UTC()
		}
		updates["updated_at"] = updatedAt
		if err := db.Model(&Story{}).Where("id = ?", old.ID).Updates(updates).Error; err != nil {
			return fmt.Errorf("update story: %w", err)
		}
	}
	if sectionsChanged {
		if err := db.Where("story_id = ?", old.ID).Delete(&StorySection{}).Error; err != nil {
			return fmt.Errorf("update story sections: %w", err)
		}
		if err := s.insertStorySections(ctx, old.ID, sectionIDs); err != nil {
			return err
		}
	}
	var fresh Story
	if err := db.First(&fresh, old.ID).Error; err != nil {
		return fmt.Errorf("reload story: %w", err)
	}
	*st = fresh
	return nil
}

func (s *Store) insertStorySections(ctx context.Context, storyID int64, sectionIDs []int64) error {
	if len(sectionIDs) == 0 {
		return nil
	}
	rows := make([]StorySection, 0, len(sectionIDs))
	for _, id := range sectionIDs {
		rows = append(rows, StorySection{StoryID: storyID, SectionID: id})
	}
	if err := s.w.WithContext(ctx).Create(&rows).Error; err != nil {
		return fmt.Errorf("insert story sections: %w", err)
	}
	return nil
}

// StoryByID returns one story.
func (s *Store) StoryByID(ctx context.Context, id int64) (*Story, error) {
	var st Story
	if err := s.r.WithContext(ctx).First(&st, id).Error; err != nil {
		return nil, notFound(err)
	}
	return &st, nil
}

// StoriesByID returns the stories with these ids, keyed by id; ids that do
// not exist are absent.
func (s *Store) StoriesByID(ctx context.Context, ids []int64) (map[int64]*Story, error) {
	out := make(map[int64]*Story, len(ids))
	for start := 0; start < len(ids); start += 500 {
		var rows []*Story
		if err := s.r.WithContext(ctx).Where("id IN ?", ids[start:min(start+500, len(ids))]).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("stories by id: %w", err)
		}
		for _, st := range rows {
			out[st.ID] = st
		}
	}
	return out, nil
}

// StorySectionIDs returns the section ids of each story, in ascending
// order, keyed by story id; a story without sections is absent.
func (s *Store) StorySectionIDs(ctx context.Context, storyIDs []int64) (map[int64][]int64, error) {
	out := make(map[int64][]int64, len(storyIDs))
	for start := 0; start < len(storyIDs); start += 500 {
		var rows []StorySection
		err := s.r.WithContext(ctx).Where("story_id IN ?", storyIDs[start:min(start+500, len(storyIDs))]).
			Order("story_id, section_id").Find(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("story sections: %w", err)
		}
		for _, r := range rows {
			out[r.StoryID] = append(out[r.StoryID], r.SectionID)
		}
	}
	return out, nil
}

// ListStories returns stories newest first: by published time, then by id.
func (s *Store) ListStories(ctx context.Context, f StoryFilter) ([]Story, error) {
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
	if f.BeforeID != 0 {
		var before Story
		if err := s.r.WithContext(ctx).Select("id", "published_at").First(&before, f.BeforeID).Error; err != nil {
			return nil, notFound(err)
		}
		q = q.Where("published_at < ? OR (published_at = ? AND id < ?)", before.PublishedAt, before.PublishedAt, before.ID)
	}
	var out []Story
	if err := q.Order("published_at DESC, id DESC").Limit(f.Limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list stories: %w", err)
	}
	return out, nil
}

// uniqueIDs returns ids sorted, without repeats.
func uniqueIDs(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
