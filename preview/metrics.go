package preview

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// This file is the Manager's Prometheus metrics. Each Manager has a
// registry of its own, so that several Managers in one process (tests, two
// services) never collide in the global one.
//
//	vitehost_preview_sessions{status}                   sessions on this node
//	vitehost_preview_api_requests_total{operation,code} API answers: code "ok" or the error code
//	vitehost_preview_install_duration_seconds{result}   resolve + install of a dependency set
//	vitehost_preview_installs{state}                    installs running and queued
//	vitehost_preview_start_duration_seconds             dev server start, to ready
//	vitehost_preview_hmr_latency_seconds                files written to Vite's account of what it did with them
//	vitehost_preview_proxied_requests_total{kind}       requests to this node's dev servers
//	vitehost_preview_websocket_tunnels                  open WebSocket tunnels to them
//	vitehost_preview_spare_runners                      spare runners ready for a session (Options.Spares)
//	vitehost_preview_spare_runner_takes_total{found}    starts and wakes of the template's set, by whether a spare was ready
//	vitehost_preview_request_bytes_in_flight            API request bodies held (Limits.MaxBytesInFlight)
//
// plus the Go runtime's and the process's collectors.

const metricPrefix = "vitehost_preview_"

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	installs *prometheus.HistogramVec
	starts   prometheus.Histogram
	hmr      prometheus.Histogram
	proxied  *prometheus.CounterVec
}

func newMetrics() *metrics {
	x := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "api_requests_total",
			Help: "API requests answered, by operation and outcome: code is \"ok\", \"forwarded\" (another node answered) or the error code.",
		}, []string{"operation", "code"}),
		installs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricPrefix + "install_duration_seconds",
			Help:    "Time to resolve and install a dependency set (queue wait excluded), by result: ok, error, canceled.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 12),
		}, []string{"result"}),
		starts: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricPrefix + "start_duration_seconds",
			Help:    "Time from a session's dev server start to its readiness.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 10),
		}),
		hmr: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricPrefix + "hmr_latency_seconds",
			Help:    "Time from an update's files landing on disk to the dev server's account of the HMR it sent for them (compile checks included).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 12),
		}),
		proxied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "proxied_requests_total",
			Help: "Requests served by this node's dev servers, by kind: http or websocket.",
		}, []string{"kind"}),
	}
	x.reg.MustRegister(x.requests, x.installs, x.starts, x.hmr, x.proxied,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return x
}

// register adds the gauges that read the Manager's state when scraped.
func (x *metrics) register(m *Manager) {
	x.reg.MustRegister(&stateCollector{m: m}, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: metricPrefix + "request_bytes_in_flight",
		Help: "Bytes of API request bodies held at once, of Limits.MaxBytesInFlight.",
	}, func() float64 { return float64(m.budget.inUse()) }))
}

// Metrics returns the handler that serves the Manager's metrics in the
// Prometheus text format, for the operator to mount (at /metrics, say).
// With Options.Token it requires the token, as the API does.
func (m *Manager) Metrics() http.Handler {
	return m.authorize(promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{}))
}

// The observations below are no-ops on a nil *metrics (unit tests of the
// parts).

func (x *metrics) observeInstall(d time.Duration, err error) {
	if x == nil {
		return
	}
	result := "ok"
	switch {
	case errors.Is(err, context.Canceled):
		result = "canceled"
	case err != nil:
		result = "error"
	}
	x.installs.WithLabelValues(result).Observe(d.Seconds())
}

func (x *metrics) observeStart(d time.Duration) {
	if x != nil {
		x.starts.Observe(d.Seconds())
	}
}

func (x *metrics) observeHMR(d time.Duration) {
	if x != nil {
		x.hmr.Observe(d.Seconds())
	}
}

func (x *metrics) countProxied(websocket bool) {
	if x == nil {
		return
	}
	kind := "http"
	if websocket {
		kind = "websocket"
	}
	x.proxied.WithLabelValues(kind).Inc()
}

func (x *metrics) countRequest(operation, code string) {
	if x != nil {
		x.requests.WithLabelValues(operation, code).Inc()
	}
}

// stateCollector reports what the Manager holds when it is scraped:
// sessions by status, open WebSocket tunnels, installs running and queued.
type stateCollector struct{ m *Manager }

var (
	sessionsDesc = prometheus.NewDesc(metricPrefix+"sessions", "Sessions on this node, by status.", []string{"status"}, nil)
	tunnelsDesc  = prometheus.NewDesc(metricPrefix+"websocket_tunnels", "Open WebSocket tunnels to this node's dev servers (HMR sockets and the apps' own).", nil, nil)
	installsDesc = prometheus.NewDesc(metricPrefix+"installs", "Dependency installs by state: running or queued.", []string{"state"}, nil)
	sparesDesc   = prometheus.NewDesc(metricPrefix+"spare_runners", "Spare runners ready for a session of the template's dependency set to start or wake in.", nil, nil)
	takesDesc    = prometheus.NewDesc(metricPrefix+"spare_runner_takes_total", "Starts and wakes of sessions of the template's dependency set, by whether they found a spare runner ready (found \"true\") or started one of their own.", []string{"found"}, nil)
)

// Describe sends the descriptions of the collected gauges.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sessionsDesc
	ch <- tunnelsDesc
	ch <- installsDesc
	ch <- sparesDesc
	ch <- takesDesc
}

// Collect counts the Manager's sessions and tunnels and its install queue.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[Status]int{StatusInstalling: 0, StatusStarting: 0, StatusActive: 0, StatusRestarting: 0, StatusHibernated: 0, StatusError: 0}
	tunnels := 0
	for _, s := range c.m.all() {
		counts[s.record().Status]++
		if p := s.proxy.Load(); p != nil {
			tunnels += p.Tunnels()
		}
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(n), string(st))
	}
	ch <- prometheus.MustNewConstMetric(tunnelsDesc, prometheus.GaugeValue, float64(tunnels))
	running, queued := c.m.deps.Counts()
	ch <- prometheus.MustNewConstMetric(installsDesc, prometheus.GaugeValue, float64(running), "running")
	ch <- prometheus.MustNewConstMetric(installsDesc, prometheus.GaugeValue, float64(queued), "queued")
	ch <- prometheus.MustNewConstMetric(sparesDesc, prometheus.GaugeValue, float64(c.m.env.spares.ready()))
	if p := c.m.env.spares; p != nil {
		ch <- prometheus.MustNewConstMetric(takesDesc, prometheus.CounterValue, float64(p.taken.Load()), "true")
		ch <- prometheus.MustNewConstMetric(takesDesc, prometheus.CounterValue, float64(p.missed.Load()), "false")
	}
}
