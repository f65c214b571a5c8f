package replay

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
)

// Strategy says where a reset moves a group's offsets (the options of
// kafka-consumer-groups --reset-offsets).
type Strategy struct {
	Kind     StrategyKind
	Time     time.Time     // KindDatetime
	Duration time.Duration // KindDuration: now minus this
	Shift    int64         // KindShift: current plus this (negative rewinds)
	Offset   int64         // KindOffset
}

// StrategyKind names a Strategy.
type StrategyKind string

const (
	ToEarliest StrategyKind = "to-earliest"
	ToLatest   StrategyKind = "to-latest"
	ToDatetime StrategyKind = "to-datetime"
	ByDuration StrategyKind = "by-duration"
	ShiftBy    StrategyKind = "shift-by"
	ToOffset   StrategyKind = "to-offset"
)

func (s Strategy) String() string {
	switch s.Kind {
	case ToDatetime:
		return fmt.Sprintf("--to-datetime %s", s.Time.UTC().Format(time.RFC3339Nano))
	case ByDuration:
		return fmt.Sprintf("--by-duration %s", s.Duration)
	case ShiftBy:
		return fmt.Sprintf("--shift-by %d", s.Shift)
	case ToOffset:
		return fmt.Sprintf("--to-offset %d", s.Offset)
	}
	return "--" + string(s.Kind)
}

// Validate names what is wrong with a strategy.
func (s Strategy) Validate() error {
	switch s.Kind {
	case ToEarliest, ToLatest, ShiftBy:
		return nil
	case ToDatetime:
		if s.Time.IsZero() {
			return errors.New("--to-datetime: a time is required, e.g. 2026-01-02T15:04:05Z")
		}
	case ByDuration:
		if s.Duration <= 0 {
			return fmt.Errorf("--by-duration %s: must be a positive duration such as 30m or 2h", s.Duration)
		}
	case ToOffset:
		if s.Offset < 0 {
			return fmt.Errorf("--to-offset %d: must be >= 0", s.Offset)
		}
	case "":
		return errors.New("choose where to move the offsets: --to-earliest, --to-latest, --to-datetime, --by-duration, --shift-by or --to-offset")
	default:
		return fmt.Errorf("unknown reset strategy %q", s.Kind)
	}
	return nil
}

// ResetRequest is one reset of a group's offsets.
type ResetRequest struct {
	Group string
	// Topic limits the reset to one topic; "" means every topic the group
	// has committed offsets for.
	Topic    string
	Strategy Strategy
	Now      time.Time // for --by-duration
}

// PartitionReset is one partition's line of a plan.
type PartitionReset struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	// Current is the committed offset, -1 when the group has none.
	Current int64 `json:"current"`
	New     int64 `json:"new"`
	// LogStart and LogEnd are the partition's bounds: [LogStart, LogEnd).
	LogStart int64 `json:"log_start"`
	LogEnd   int64 `json:"log_end"`
	// LagNow is LogEnd - Current (-1 without a committed offset); LagAfter
	// is LogEnd - New.
	LagNow   int64 `json:"lag_now"`
	LagAfter int64 `json:"lag_after"`
	// Clamped: the strategy asked for an offset outside the log's bounds.
	Clamped bool `json:"clamped,omitempty"`
}

// Member is one active member of a consumer group.
type Member struct {
	ID       string   `json:"member_id"`
	ClientID string   `json:"client_id"`
	Host     string   `json:"host"`
	Assigned []string `json:"assigned"` // "topic:partition"
}

func (m Member) String() string {
	s := fmt.Sprintf("%s (client %s, host %s)", m.ID, m.ClientID, m.Host)
	if len(m.Assigned) > 0 {
		s += " owning " + strings.Join(m.Assigned, ",")
	}
	return s
}

// ResetPlan is what a reset would do, or did.
type ResetPlan struct {
	Group      string           `json:"group"`
	State      string           `json:"state"` // Empty, Stable, Dead (unknown group), ...
	Members    []Member         `json:"members"`
	Strategy   string           `json:"strategy"`
	Partitions []PartitionReset `json:"partitions"`
	Executed   bool             `json:"executed"`
}

// ActiveGroupError refuses a reset while the group has members: their
// positions would overwrite the reset at their next commit, and their
// in-memory positions would not move (the same rule as
// kafka-consumer-groups).
type ActiveGroupError struct {
	Group   string
	State   string
	Members []Member
}

func (e *ActiveGroupError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "group %s is %s with %d active member(s); offsets can only be reset while the group is inactive (the rule of kafka-consumer-groups --reset-offsets). Stop its consumers first:", e.Group, e.State, len(e.Members))
	for _, m := range e.Members {
		b.WriteString("\n  member " + m.String())
	}
	return b.String()
}

// describeGroup returns a group's state and members.
func describeGroup(ctx context.Context, k *kafkaio.Cluster, group string) (string, []Member, error) {
	res, err := k.Client().DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return "", nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	for _, g := range res.Groups {
		if g.GroupID != group {
			continue
		}
		if g.Error != nil && !errors.Is(g.Error, kafka.GroupIdNotFound) {
			return "", nil, fmt.Errorf("describe group %s: %w", group, g.Error)
		}
		var members []Member
		for _, m := range g.Members {
			mem := Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
			for _, t := range m.MemberAssignments.Topics {
				for _, p := range t.Partitions {
					mem.Assigned = append(mem.Assigned, fmt.Sprintf("%s:%d", t.Topic, p))
				}
			}
			sort.Strings(mem.Assigned)
			members = append(members, mem)
		}
		sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
		state := g.GroupState
		if state == "" {
			state = "Dead"
		}
		return state, members, nil
	}
	return "Dead", nil, nil
}

// committedOffsets returns the group's committed offsets: of topic (every
// partition, -1 where none), or of every topic it has any for.
func committedOffsets(ctx context.Context, k *kafkaio.Cluster, group, topic string, partitions []int) (map[string]map[int]int64, error) {
	req := &kafka.OffsetFetchRequest{GroupID: group}
	if topic != "" {
		req.Topics = map[string][]int{topic: partitions}
	}
	res, err := k.Client().OffsetFetch(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	if res.Error != nil && !errors.Is(res.Error, kafka.GroupIdNotFound) {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, res.Error)
	}
	out := map[string]map[int]int64{}
	for t, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil && !errors.Is(p.Error, kafka.UnknownTopicOrPartition) {
				return nil, fmt.Errorf("committed offset of group %s on %s/%d: %w", group, t, p.Partition, p.Error)
			}
			if topic == "" && p.CommittedOffset < 0 {
				continue
			}
			if out[t] == nil {
				out[t] = map[int]int64{}
			}
			out[t][p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// PlanReset works out a reset without changing anything.
func PlanReset(ctx context.Context, k *kafkaio.Cluster, req ResetRequest) (*ResetPlan, error) {
	if req.Group == "" {
		return nil, errors.New("--group: a consumer group is required")
	}
	if err := req.Strategy.Validate(); err != nil {
		return nil, err
	}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	state, members, err := describeGroup(ctx, k, req.Group)
	if err != nil {
		return nil, err
	}
	plan := &ResetPlan{Group: req.Group, State: state, Members: members, Strategy: req.Strategy.String()}

	topics := map[string]map[int]int64{}
	if req.Topic != "" {
		n, err := partitionCount(ctx, k, req.Topic)
		if err != nil {
			return nil, fmt.Errorf("--topic: %w", err)
		}
		committed, err := committedOffsets(ctx, k, req.Group, req.Topic, allPartitions(n))
		if err != nil {
			return nil, err
		}
		cur := map[int]int64{}
		for _, p := range allPartitions(n) {
			cur[p] = -1
			if off, ok := committed[req.Topic][p]; ok {
				cur[p] = off
			}
		}
		topics[req.Topic] = cur
	} else {
		committed, err := committedOffsets(ctx, k, req.Group, "", nil)
		if err != nil {
			return nil, err
		}
		if len(committed) == 0 {
			return nil, fmt.Errorf("group %s has no committed offsets; name the topic to set them with --topic", req.Group)
		}
		topics = committed
	}

	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, topic := range names {
		cur := topics[topic]
		parts := sortedKeys(cur)
		bounds, err := k.Offsets(ctx, topic, parts)
		if err != nil {
			return nil, err
		}
		var atTime map[int]int64
		switch req.Strategy.Kind {
		case ToDatetime:
			atTime, err = offsetsAt(ctx, k, topic, parts, req.Strategy.Time, bounds)
		case ByDuration:
			atTime, err = offsetsAt(ctx, k, topic, parts, req.Now.Add(-req.Strategy.Duration), bounds)
		}
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			b := bounds[p]
			line := PartitionReset{Topic: topic, Partition: p, Current: cur[p], LogStart: b.First, LogEnd: b.End, LagNow: -1}
			if line.Current >= 0 {
				line.LagNow = max(b.End-line.Current, 0)
			}
			var want int64
			switch req.Strategy.Kind {
			case ToEarliest:
				want = b.First
			case ToLatest:
				want = b.End
			case ToDatetime, ByDuration:
				want = atTime[p]
			case ShiftBy:
				if line.Current < 0 {
					return nil, fmt.Errorf("--shift-by: group %s has no committed offset on %s/%d to shift from; use --to-earliest, --to-datetime or --to-offset", req.Group, topic, p)
				}
				want = line.Current + req.Strategy.Shift
			case ToOffset:
				want = req.Strategy.Offset
			}
			line.New = min(max(want, b.First), b.End)
			line.Clamped = line.New != want
			line.LagAfter = b.End - line.New
			plan.Partitions = append(plan.Partitions, line)
		}
	}
	return plan, nil
}

// ExecuteReset commits the plan's new offsets as a "simple" commit
// (generation -1, no member id), which the broker accepts only for a group
// without members. It refuses an active group with *ActiveGroupError,
// checking again right before committing, and reads the offsets back to
// prove they are what the plan printed.
func ExecuteReset(ctx context.Context, k *kafkaio.Cluster, plan *ResetPlan) error {
	state, members, err := describeGroup(ctx, k, plan.Group)
	if err != nil {
		return err
	}
	if len(members) > 0 {
		return &ActiveGroupError{Group: plan.Group, State: state, Members: members}
	}
	commits := map[string][]kafka.OffsetCommit{}
	want := map[string][]int{}
	for _, p := range plan.Partitions {
		commits[p.Topic] = append(commits[p.Topic], kafka.OffsetCommit{Partition: p.Partition, Offset: p.New})
		want[p.Topic] = append(want[p.Topic], p.Partition)
	}
	res, err := k.Client().OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: plan.Group, GenerationID: -1, Topics: commits})
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", plan.Group, err)
	}
	for topic, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				if errors.Is(p.Error, kafka.UnknownMemberId) || errors.Is(p.Error, kafka.IllegalGeneration) || errors.Is(p.Error, kafka.RebalanceInProgress) {
					// A consumer joined between the check and the commit.
					if st, ms, derr := describeGroup(ctx, k, plan.Group); derr == nil && len(ms) > 0 {
						return &ActiveGroupError{Group: plan.Group, State: st, Members: ms}
					}
				}
				return fmt.Errorf("commit offset of group %s on %s/%d: %w", plan.Group, topic, p.Partition, p.Error)
			}
		}
	}
	for topic, parts := range want {
		got, err := committedOffsets(ctx, k, plan.Group, topic, parts)
		if err != nil {
			return fmt.Errorf("read back: %w", err)
		}
		for _, p := range plan.Partitions {
			if p.Topic != topic {
				continue
			}
			if g := got[topic][p.Partition]; g != p.New {
				return fmt.Errorf("group %s on %s/%d: committed %d but reads back %d (did a consumer start and commit meanwhile?)", plan.Group, topic, p.Partition, p.New, g)
			}
		}
	}
	plan.Executed = true
	return nil
}

// waitInactive waits (bounded) until group has no members: a consumer that
// stopped cleanly leaves at once, one that was killed only when its session
// times out.
func waitInactive(ctx context.Context, k *kafkaio.Cluster, group string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		state, members, err := describeGroup(ctx, k, group)
		if err == nil && len(members) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return &ActiveGroupError{Group: group, State: state, Members: members}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
