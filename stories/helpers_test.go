package stories_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"herald/models"
)

// clock is an injected, settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// addSections creates sections by slug and returns their ids.
func addSections(t *testing.T, store *models.Store, slugs ...string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, slug := range slugs {
		sec := models.Section{Slug: slug, Name: slug}
		if err := store.CreateSection(context.Background(), &sec); err != nil {
			t.Fatal(err)
		}
		out[slug] = sec.ID
	}
	return out
}

// allStories returns every stored story, newest first.
func allStories(t *testing.T, store *models.Store) []models.Story {
	t.Helper()
	list, err := store.ListStories(context.Background(), models.StoryFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func sectionsOf(t *testing.T, store *models.Store, storyID int64) []int64 {
	t.Helper()
	m, err := store.StorySectionIDs(context.Background(), []int64{storyID})
	if err != nil {
		t.Fatal(err)
	}
	return m[storyID]
}
