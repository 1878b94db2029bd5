package main

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	stdprometheus "github.com/prometheus/client_golang/prometheus"

	"github.com/cometbft/cometbft/p2p"
)

// runMetrics implements mode "metrics": it lists the metric families the
// reference's p2p package registers, as a CometBFT node does (namespace from
// --namespace, every family labelled by chain_id), one "family" event each
// with its full name, type and label names, then "done".
func runMetrics(args []string) error {
	fs := newFlagSet("metrics")
	namespace := fs.String("namespace", "cometbft", "the node's instrumentation namespace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rec := &recordingRegisterer{}
	// The reference registers through the default registerer; a recorder
	// put in its place sees every collector and its descriptor.
	saved := stdprometheus.DefaultRegisterer
	stdprometheus.DefaultRegisterer = rec
	defer func() { stdprometheus.DefaultRegisterer = saved }()
	_ = p2p.PrometheusMetrics(*namespace, "chain_id", "test-chain")
	if rec.err != nil {
		return rec.err
	}
	sort.Slice(rec.families, func(i, j int) bool { return rec.families[i].Name < rec.families[j].Name })
	for _, f := range rec.families {
		emit(f)
	}
	n := len(rec.families)
	emit(doneEvent{Event: "done", Messages: &n})
	return nil
}

type familyEvent struct {
	Event  string   `json:"event"`
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Labels []string `json:"labels"`
}

type recordingRegisterer struct {
	families []familyEvent
	err      error
}

// The descriptor's string form is the only public view of its name and
// label names: `Desc{fqName: "…", help: "…", constLabels: {…},
// variableLabels: {a,b}}` (older releases print `[a b]`).
var (
	descName   = regexp.MustCompile(`fqName: "([^"]*)"`)
	descLabels = regexp.MustCompile(`variableLabels: [\[{]([^\]}]*)[\]}]`)
	descConst  = regexp.MustCompile(`constLabels: \{([^}]*)\}`)
)

func (r *recordingRegisterer) Register(c stdprometheus.Collector) error {
	var kind string
	switch c.(type) {
	case *stdprometheus.CounterVec, stdprometheus.Counter:
		kind = "counter"
	case *stdprometheus.GaugeVec, stdprometheus.Gauge:
		kind = "gauge"
	case *stdprometheus.HistogramVec, stdprometheus.Histogram:
		kind = "histogram"
	case *stdprometheus.SummaryVec, stdprometheus.Summary:
		kind = "summary"
	default:
		kind = fmt.Sprintf("unknown (%T)", c)
	}
	descs := make(chan *stdprometheus.Desc, 16)
	go func() { c.Describe(descs); close(descs) }()
	for d := range descs {
		s := d.String()
		name := descName.FindStringSubmatch(s)
		if name == nil {
			r.err = fmt.Errorf("cannot read a metric name from %s", s)
			continue
		}
		labels := []string{}
		for _, re := range []*regexp.Regexp{descConst, descLabels} {
			m := re.FindStringSubmatch(s)
			if m == nil {
				continue
			}
			for _, l := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ',' || r == ' ' }) {
				if re == descConst {
					l, _, _ = strings.Cut(l, "=")
				}
				labels = append(labels, l)
			}
		}
		sort.Strings(labels)
		r.families = append(r.families, familyEvent{"family", name[1], kind, labels})
	}
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...stdprometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recordingRegisterer) Unregister(stdprometheus.Collector) bool { return true }
