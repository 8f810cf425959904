package subscribers

import (
	"context"
	"sync"
	"time"

	"herald/models"
)

// sectionsTTL is how long the section list is reused between reads. A
// signup naming a slug the cache does not know reads afresh, so a section
// created a moment ago is found at once.
const sectionsTTL = 5 * time.Second

// sectionCache keeps the (short) list of sections for signup validation,
// which would otherwise read it on every request.
type sectionCache struct {
	mu     sync.Mutex
	at     time.Time
	bySlug map[string]models.Section
	all    []models.Section
}

func (c *sectionCache) get(ctx context.Context, store *models.Store, now time.Time, slugs []string) (map[string]models.Section, []models.Section, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fresh := c.bySlug != nil && now.Sub(c.at) < sectionsTTL && now.Sub(c.at) >= 0
	if fresh {
		for _, s := range slugs {
			if _, ok := c.bySlug[s]; !ok {
				fresh = false
				break
			}
		}
	}
	if !fresh {
		all, err := store.Sections(ctx)
		if err != nil {
			return nil, nil, err
		}
		c.all, c.at = all, now
		c.bySlug = make(map[string]models.Section, len(all))
		for _, s := range all {
			c.bySlug[s.Slug] = s
		}
	}
	return c.bySlug, c.all, nil
}
