// Package report renders a journal (or two, side by side) as a Markdown
// file and one self-contained HTML page: charts per variant over time with
// fault windows shaded (request rate, success rate, p50/p99 latency,
// breaker state, consumer lag, view freshness, view gap), and tables for
// the verdict, the fault timeline, recovery metrics, the steady-state probes
// and the audit. docs/report.md explains how to read one.
//
// Rendering is deterministic: the same journal gives byte-identical files
// (charts drawn by gonum/plot with its embedded Liberation fonts, no render
// time, sorted maps), so a report can be re-rendered and diffed. The HTML
// embeds its charts as data: URIs and needs no network.
package report
