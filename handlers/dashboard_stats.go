package handlers

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"herald/models"
)

// dashStats are the dashboard's figures that read whole tables (every
// subscription, 90 days of the consent ledger). They are computed at most
// every statsTTL and served stale meanwhile, so the dashboard stays fast
// with millions of readers.
type dashStats struct {
	At        time.Time
	ByStatus  map[string]int64
	BySection []models.SectionStatusCount
	Days      []models.DayCount
	Retrying  int64
	RetryErr  string
}

const (
	statsTTL       = 30 * time.Second
	statsMaxRetry  = 1000
	statsChartDays = 90
)

// statsCache holds the last dashStats and refreshes them in the
// background once they are older than statsTTL.
type statsCache struct {
	store  *models.Store
	now    func() time.Time
	logger *slog.Logger

	mu         sync.Mutex
	val        *dashStats
	refreshing bool
	first      sync.Mutex // one synchronous first computation at a time
}

// get returns the figures: fresh on the first call, at most statsTTL stale
// (plus the time a refresh takes) after.
func (c *statsCache) get(ctx context.Context) (*dashStats, error) {
	c.mu.Lock()
	val := c.val
	if val != nil && c.now().Sub(val.At) > statsTTL && !c.refreshing {
		c.refreshing = true
		go c.refresh(context.WithoutCancel(ctx))
	}
	c.mu.Unlock()
	if val != nil {
		return val, nil
	}
	c.first.Lock()
	defer c.first.Unlock()
	c.mu.Lock()
	val = c.val
	c.mu.Unlock()
	if val != nil {
		return val, nil
	}
	val, err := c.compute(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.val = val
	c.mu.Unlock()
	return val, nil
}

// Warm counts the dashboard's figures ahead of the first visit; the result
// is kept as a visit's would be. It returns when done or when ctx ends.
func (s *Server) Warm(ctx context.Context) error {
	_, err := s.stats.get(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (c *statsCache) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	val, err := c.compute(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshing = false
	if err != nil {
		c.logger.WarnContext(ctx, "dashboard figures", slog.Any("error", err))
		return
	}
	c.val = val
}

func (c *statsCache) compute(ctx context.Context) (*dashStats, error) {
	st := &dashStats{At: c.now()}
	var err error
	if st.ByStatus, err = c.store.SubscriberCounts(ctx); err != nil {
		return nil, err
	}
	if st.BySection, err = c.store.SectionStatusCounts(ctx); err != nil {
		return nil, err
	}
	since := startOfDay(st.At).AddDate(0, 0, -(statsChartDays - 1))
	if st.Days, err = c.store.DailyConsentCounts(ctx, since); err != nil {
		return nil, err
	}
	if st.Retrying, st.RetryErr, err = c.store.RetryingDeliveries(ctx, statsMaxRetry); err != nil {
		return nil, err
	}
	return st, nil
}

func startOfDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// chart builds the daily chart of the last days from the cached counts.
func (st *dashStats) chart(days int) dailyChart {
	end := startOfDay(st.At)
	ch := dailyChart{Series: []chartSeries{
		{Name: "Signups", Color: "#0b5cad"},
		{Name: "Confirmations", Color: "#1e7b3c"},
		{Name: "Unsubscribes", Color: "#b3261e"},
	}}
	index := map[string]int{}
	for i := 0; i < days; i++ {
		d := end.AddDate(0, 0, i-days+1)
		ch.Days = append(ch.Days, d)
		index[d.Format("2006-01-02")] = i
	}
	for i := range ch.Series {
		ch.Series[i].Values = make([]int64, days)
	}
	kinds := map[string]int{models.ConsentSignup: 0, models.ConsentConfirm: 1, models.ConsentUnsubscribe: 2}
	for _, dc := range st.Days {
		i, ok := index[dc.Day]
		k, known := kinds[dc.Kind]
		if ok && known {
			ch.Series[k].Values[i] += dc.N
		}
	}
	return ch
}
