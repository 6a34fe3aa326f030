// Package metrics exports gatehouse's Prometheus metrics: logins by
// outcome, sessions created and ended, session look-ups, request latency by
// GraphQL operation, and the bcrypt queue and its wait.
package metrics

import (
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxOperations bounds the operation label: names come from clients, so
// after this many distinct ones the rest are counted as "other".
const maxOperations = 100

// Metrics holds the collectors. It implements auth.Meter.
type Metrics struct {
	reg      *prometheus.Registry
	logins   *prometheus.CounterVec
	created  prometheus.Counter
	ended    *prometheus.CounterVec
	lookups  *prometheus.CounterVec
	requests *prometheus.HistogramVec
	bcrypt   prometheus.Histogram

	mu  sync.Mutex
	ops map[string]bool
}

// New registers gatehouse's metrics, plus the Go runtime's and the
// process's, on a fresh registry. queue reports the bcrypt queue length.
func New(queue func() int64) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_logins_total", Help: "Login attempts by outcome: ok, bad_credentials, throttled, error.",
		}, []string{"outcome"}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_sessions_created_total", Help: "Sessions opened by login or register.",
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_sessions_deleted_total", Help: "Sessions ended, by reason: logout, revoked, others, password, expired, swept.",
		}, []string{"reason"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_session_lookups_total", Help: "Token validations by result: ok, unknown, bad_secret, expired, malformed.",
		}, []string{"result"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_request_duration_seconds",
			Help:    "GraphQL request latency by operation name (\"other\" past 100 distinct names).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
		bcrypt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gatehouse_bcrypt_wait_seconds",
			Help:    "Time a password check or hash waited for a bcrypt slot.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		ops: map[string]bool{},
	}
	m.reg.MustRegister(m.logins, m.created, m.ended, m.lookups, m.requests, m.bcrypt,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_bcrypt_queue", Help: "Requests waiting for a bcrypt slot.",
		}, func() float64 { return float64(queue()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Known label values start at zero, so rates work from the first scrape.
	for _, o := range []string{"ok", "bad_credentials", "throttled", "error"} {
		m.logins.WithLabelValues(o)
	}
	return m
}

// Disk is the embedded database's use of its disk (see embedded.DiskStats).
type Disk struct {
	FileBytes, WALBytes, FreeBytes int64
	LastCheckpoint, LastVacuum     time.Time
}

// WatchDisk adds gauges of the embedded database's disk, read from disk at
// each scrape: its files' size, their WAL's, the free space, and the times
// of the last checkpoint and vacuum (0 for never).
func (m *Metrics) WatchDisk(disk func() Disk) {
	gauge := func(name, help string, v func(Disk) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(disk()) })
	}
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	m.reg.MustRegister(
		gauge("gatehouse_db_file_bytes", "Size of the embedded database's files.", func(d Disk) float64 { return float64(d.FileBytes) }),
		gauge("gatehouse_db_wal_bytes", "Size of the embedded database's write-ahead logs.", func(d Disk) float64 { return float64(d.WALBytes) }),
		gauge("gatehouse_db_free_bytes", "Free space on DATA_DIR's file system.", func(d Disk) float64 { return float64(d.FreeBytes) }),
		gauge("gatehouse_db_last_checkpoint_timestamp_seconds", "When a write-ahead log was last emptied (Unix time; 0: not yet).",
			func(d Disk) float64 { return unix(d.LastCheckpoint) }),
		gauge("gatehouse_db_last_vacuum_timestamp_seconds", "When free pages were last given back to the file system (Unix time; 0: not yet).",
			func(d Disk) float64 { return unix(d.LastVacuum) }),
	)
}

// Cache is what the session cache did (see storage.CacheStats).
type Cache struct {
	Hits, Misses uint64
	Entries      int
	Bytes        int64
}

// WatchSessionCache adds the session cache's counters and gauges, read
// from cache at each scrape.
func (m *Metrics) WatchSessionCache(cache func() Cache) {
	counter := func(name, help string, v func(Cache) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return v(cache()) })
	}
	gauge := func(name, help string, v func(Cache) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(cache()) })
	}
	m.reg.MustRegister(
		counter("gatehouse_session_cache_hits_total", "Session reads answered from the session cache.", func(c Cache) float64 { return float64(c.Hits) }),
		counter("gatehouse_session_cache_misses_total", "Session reads the session cache sent to the database.", func(c Cache) float64 { return float64(c.Misses) }),
		gauge("gatehouse_session_cache_entries", "Sessions in the session cache.", func(c Cache) float64 { return float64(c.Entries) }),
		gauge("gatehouse_session_cache_bytes", "Memory the session cache's entries take, as it estimates it.", func(c Cache) float64 { return float64(c.Bytes) }),
	)
}

// WatchSubscriptions adds a gauge of the live subscriptions this instance
// holds, read from n at each scrape.
func (m *Metrics) WatchSubscriptions(n func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gatehouse_subscriptions", Help: "Live subscriptions (sessionEvents) held by this instance.",
	}, func() float64 { return float64(n()) }))
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Login counts a login attempt.
func (m *Metrics) Login(outcome string) { m.logins.WithLabelValues(outcome).Inc() }

// SessionCreated counts a new session.
func (m *Metrics) SessionCreated() { m.created.Inc() }

// SessionsEnded counts n ended sessions.
func (m *Metrics) SessionsEnded(n int, reason string) {
	if n > 0 {
		m.ended.WithLabelValues(reason).Add(float64(n))
	}
}

// Lookup counts a token validation.
func (m *Metrics) Lookup(result string) { m.lookups.WithLabelValues(result).Inc() }

// BcryptWait observes how long a password check or hash waited for a slot.
func (m *Metrics) BcryptWait(d time.Duration) { m.bcrypt.Observe(d.Seconds()) }

var opName = regexp.MustCompile(`^[_A-Za-z][_0-9A-Za-z]{0,63}$`)

// Request records one GraphQL request's latency.
func (m *Metrics) Request(operation string, d time.Duration) {
	m.requests.WithLabelValues(m.label(operation)).Observe(d.Seconds())
}

func (m *Metrics) label(op string) string {
	if op == "" {
		return "anonymous"
	}
	if !opName.MatchString(op) {
		return "other"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ops[op] {
		return op
	}
	if len(m.ops) >= maxOperations {
		return "other"
	}
	m.ops[op] = true
	return op
}
