package replay

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

func committed(t *testing.T, b *testBroker, group string) map[int]int64 {
	t.Helper()
	got, err := committedOffsets(servetest.Context(t, 10*time.Second), b.k, group, model.TopicRatings, allPartitions(model.RatingsPartitions))
	if err != nil {
		t.Fatal(err)
	}
	return got[model.TopicRatings]
}

func execute(t *testing.T, b *testBroker, req ResetRequest) *ResetPlan {
	t.Helper()
	ctx := servetest.Context(t, 10*time.Second)
	plan, err := PlanReset(ctx, b.k, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := ExecuteReset(ctx, b.k, plan); err != nil {
		t.Fatal(err)
	}
	return plan
}

// A dry run prints where each partition would go and changes nothing;
// --execute then moves the offsets exactly as printed.
func TestResetDryRunChangesNothingExecuteMovesAsPrinted(t *testing.T) {
	b := newTestBroker(t)
	start := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	b.ratings("r", 600, 30, start)
	execute(t, b, ResetRequest{Group: "g", Topic: model.TopicRatings, Strategy: Strategy{Kind: ToLatest}})
	before := committed(t, b, "g")

	ctx := servetest.Context(t, 10*time.Second)
	plan, err := PlanReset(ctx, b.k, ResetRequest{Group: "g", Strategy: Strategy{Kind: ToEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Partitions) != model.RatingsPartitions || plan.Executed {
		t.Fatalf("plan = %+v, want %d partitions, not executed", plan, model.RatingsPartitions)
	}
	for _, p := range plan.Partitions {
		if p.Current != before[p.Partition] || p.New != p.LogStart || p.LagAfter != p.LogEnd-p.LogStart || p.LagNow != 0 {
			t.Errorf("partition %d: %+v, want current %d, new = log start, lag after = whole log", p.Partition, p, before[p.Partition])
		}
	}
	if after := committed(t, b, "g"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a dry run changed the offsets: %v → %v", before, after)
	}

	if err := ExecuteReset(ctx, b.k, plan); err != nil {
		t.Fatal(err)
	}
	after := committed(t, b, "g")
	for _, p := range plan.Partitions {
		if after[p.Partition] != p.New {
			t.Errorf("partition %d committed %d, plan printed %d", p.Partition, after[p.Partition], p.New)
		}
	}

	// --shift-by from there, clamped to the log's end.
	plan = execute(t, b, ResetRequest{Group: "g", Topic: model.TopicRatings, Strategy: Strategy{Kind: ShiftBy, Shift: 40}})
	after = committed(t, b, "g")
	for _, p := range plan.Partitions {
		want := min(p.LogStart+40, p.LogEnd)
		if p.New != want || after[p.Partition] != want {
			t.Errorf("shift-by 40 on partition %d: plan %d, committed %d, want %d", p.Partition, p.New, after[p.Partition], want)
		}
	}
}

// --to-datetime and --by-duration pick, per partition, the first record at
// or after the time; a partition with none goes to its end.
func TestResetToDatetime(t *testing.T) {
	b := newTestBroker(t)
	start := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	msgs := b.ratings("r", 300, 12, start)
	cut := start.Add(200 * time.Millisecond)
	// Expected offset per partition: how many of its records are before cut.
	want := map[int]int64{}
	for _, m := range msgs {
		if _, ok := want[m.Partition]; !ok {
			want[m.Partition] = 0
		}
		if m.Time.Before(cut) {
			want[m.Partition]++
		}
	}
	plan := execute(t, b, ResetRequest{Group: "g-time", Topic: model.TopicRatings, Strategy: Strategy{Kind: ToDatetime, Time: cut}})
	for _, p := range plan.Partitions {
		if w, ok := want[p.Partition]; ok && p.New != w {
			t.Errorf("partition %d: to-datetime gave %d, want %d", p.Partition, p.New, w)
		}
		if _, ok := want[p.Partition]; !ok && p.New != p.LogEnd {
			t.Errorf("empty partition %d: want its end %d, got %d", p.Partition, p.LogEnd, p.New)
		}
	}
	// by-duration: now - 2h is before every record.
	plan = execute(t, b, ResetRequest{Group: "g-time", Strategy: Strategy{Kind: ByDuration, Duration: 2 * time.Hour}})
	for _, p := range plan.Partitions {
		if p.New != p.LogStart {
			t.Errorf("by-duration 2h on partition %d: %d, want the start %d", p.Partition, p.New, p.LogStart)
		}
	}
}

// An active group is refused, naming its members, and keeps its offsets.
func TestResetRefusesActiveGroup(t *testing.T) {
	b := newTestBroker(t)
	b.ratings("r", 60, 10, time.Now().Add(-time.Minute))
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: b.k.Config().Brokers, GroupID: "busy", Topic: model.TopicRatings,
		MaxWait: 200 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 2 * time.Second,
		Dialer: &kafka.Dialer{ClientID: "busy-consumer", Timeout: 3 * time.Second},
	})
	t.Cleanup(func() { r.Close() })
	ctx := servetest.Context(t, 20*time.Second)
	if _, err := r.ReadMessage(ctx); err != nil { // joined, and committed one offset
		t.Fatal(err)
	}
	before := committed(t, b, "busy")

	plan, err := PlanReset(ctx, b.k, ResetRequest{Group: "busy", Topic: model.TopicRatings, Strategy: Strategy{Kind: ToLatest}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Members) != 1 || plan.Members[0].ClientID != "busy-consumer" {
		t.Fatalf("plan members = %+v, want the one reader", plan.Members)
	}
	err = ExecuteReset(ctx, b.k, plan)
	var active *ActiveGroupError
	if !errors.As(err, &active) {
		t.Fatalf("execute on an active group: %v, want *ActiveGroupError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "busy-consumer") || !strings.Contains(msg, plan.Members[0].ID) {
		t.Errorf("refusal does not name the member: %s", msg)
	}
	if after := committed(t, b, "busy"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a refused reset changed the offsets: %v → %v", before, after)
	}

	// Once the consumer left, the same plan goes through.
	r.Close()
	if err := waitInactive(ctx, b.k, "busy", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ExecuteReset(ctx, b.k, plan); err != nil {
		t.Fatalf("execute after the consumer left: %v", err)
	}
}

func TestResetNamesBadInput(t *testing.T) {
	b := newTestBroker(t)
	ctx := servetest.Context(t, 10*time.Second)
	for _, tc := range []struct {
		req  ResetRequest
		want string
	}{
		{ResetRequest{Strategy: Strategy{Kind: ToEarliest}}, "--group"},
		{ResetRequest{Group: "g"}, "--to-earliest"},
		{ResetRequest{Group: "g", Strategy: Strategy{Kind: ToOffset, Offset: -3}}, "--to-offset"},
		{ResetRequest{Group: "g", Strategy: Strategy{Kind: ByDuration}}, "--by-duration"},
		{ResetRequest{Group: "g", Topic: "nope", Strategy: Strategy{Kind: ToEarliest}}, "--topic"},
		{ResetRequest{Group: "never-used", Strategy: Strategy{Kind: ToEarliest}}, "--topic"},
		{ResetRequest{Group: "never-used", Topic: model.TopicRatings, Strategy: Strategy{Kind: ShiftBy, Shift: 1}}, "--shift-by"},
	} {
		if _, err := PlanReset(ctx, b.k, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PlanReset(%+v) = %v, want an error naming %s", tc.req, err, tc.want)
		}
	}
}
