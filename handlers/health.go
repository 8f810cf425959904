package handlers

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"herald/models"
)

// healthz answers 200 when the process is up and the database answers.
func (s *Server) healthz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.d.Store.Ping(ctx); err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "database": "down"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) serveMetrics(c *gin.Context) {
	promhttp.HandlerFor(s.d.Registry, promhttp.HandlerOpts{}).ServeHTTP(c.Writer, c.Request)
}

// metrics are the counters the handlers keep; the gauges of subscribers
// and deliveries by status are read from the database at scrape time.
type metrics struct {
	requests      *prometheus.CounterVec
	byStatus      sync.Map // status code -> prometheus.Counter, so a request does not format its label
	signups       *prometheus.CounterVec
	confirmations prometheus.Counter
	unsubscribes  prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, store *models.Store) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_http_requests_total", Help: "HTTP requests by status code.",
		}, []string{"code"}),
		signups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_signups_total", Help: "Signup requests by result (accepted, invalid, bot, error).",
		}, []string{"result"}),
		confirmations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_confirmations_total", Help: "Confirm-button presses that succeeded.",
		}),
		unsubscribes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_unsubscribes_total", Help: "Unsubscribe requests that succeeded.",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.signups, m.confirmations, m.unsubscribes,
		&statusCollector{store: store},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// request returns the request counter for a status code.
func (m *metrics) request(status int) prometheus.Counter {
	if c, ok := m.byStatus.Load(status); ok {
		return c.(prometheus.Counter)
	}
	c := m.requests.WithLabelValues(strconv.Itoa(status))
	m.byStatus.Store(status, c)
	return c
}

// statusCollector reports subscribers and deliveries by status.
type statusCollector struct {
	store *models.Store
}

var (
	subscribersDesc = prometheus.NewDesc("herald_subscribers", "Subscribers by status.", []string{"status"}, nil)
	deliveriesDesc  = prometheus.NewDesc("herald_deliveries", "Outbox deliveries by status.", []string{"status"}, nil)
)

func (sc *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- subscribersDesc
	ch <- deliveriesDesc
}

func (sc *statusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if counts, err := sc.store.SubscriberCounts(ctx); err == nil {
		for status, n := range counts {
			ch <- prometheus.MustNewConstMetric(subscribersDesc, prometheus.GaugeValue, float64(n), status)
		}
	}
	if counts, err := sc.store.DeliveryCounts(ctx); err == nil {
		for status, n := range counts {
			ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.GaugeValue, float64(n), status)
		}
	}
}
