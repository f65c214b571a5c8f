package registry

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// Level is a compatibility level, as Confluent's Schema Registry names them.
type Level string

const (
	None               Level = "NONE"
	Backward           Level = "BACKWARD"
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	Forward            Level = "FORWARD"
	ForwardTransitive  Level = "FORWARD_TRANSITIVE"
	Full               Level = "FULL"
	FullTransitive     Level = "FULL_TRANSITIVE"
)

// Levels lists every level.
var Levels = []Level{None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive}

// DefaultLevel is the global level of a new registry: Confluent's default.
const DefaultLevel = Backward

// ParseLevel reads a level name (case-insensitive, as Confluent accepts).
func ParseLevel(s string) (Level, error) {
	l := Level(strings.ToUpper(strings.TrimSpace(s)))
	for _, v := range Levels {
		if v == l {
			return l, nil
		}
	}
	names := make([]string, len(Levels))
	for i, v := range Levels {
		names[i] = string(v)
	}
	return "", fmt.Errorf("invalid compatibility level %q (valid: %s)", s, strings.Join(names, ", "))
}

// transitive says whether the level checks every earlier version, not only
// the latest.
func (l Level) transitive() bool { return strings.HasSuffix(string(l), "_TRANSITIVE") }

// backward: the new schema reads data written with the old one.
func (l Level) backward() bool {
	return strings.HasPrefix(string(l), "BACKWARD") || strings.HasPrefix(string(l), "FULL")
}

// forward: the old schema reads data written with the new one.
func (l Level) forward() bool {
	return strings.HasPrefix(string(l), "FORWARD") || strings.HasPrefix(string(l), "FULL")
}

// check tests candidate against earlier schemas (oldest first) under level
// and returns one message per violation (empty: compatible). Non-transitive
// levels look at the latest earlier schema only.
func check(level Level, candidate avro.Schema, earlier []avro.Schema) []string {
	if level == None || len(earlier) == 0 {
		return nil
	}
	if !level.transitive() {
		earlier = earlier[len(earlier)-1:]
	}
	sc := avro.NewSchemaCompatibility()
	var msgs []string
	for i, old := range earlier {
		which := "the latest version"
		if level.transitive() {
			which = fmt.Sprintf("earlier schema %d of %d", i+1, len(earlier))
		}
		if level.backward() {
			if err := sc.Compatible(candidate, old); err != nil {
				msgs = append(msgs, fmt.Sprintf("BACKWARD against %s: the new schema cannot read data written with it: %v", which, err))
			}
		}
		if level.forward() {
			if err := sc.Compatible(old, candidate); err != nil {
				msgs = append(msgs, fmt.Sprintf("FORWARD against %s: it cannot read data written with the new schema: %v", which, err))
			}
		}
	}
	return msgs
}

// parse parses a schema on its own (no shared name cache: two versions of
// one record name must not collide).
func parse(text string) (avro.Schema, error) {
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}
