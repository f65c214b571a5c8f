package chaos

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Override is one field of an experiment set from the command line
// (`lab chaos run --set load.rate=20`). It is applied to the file's YAML
// before the file is decoded, so the value is checked exactly as if it were
// written in the file, and an error names the --set it came from.
type Override struct {
	// Path names the field as the validator does: "load.rate",
	// "steady_state.probes[0].min", "method[1].params.latency".
	Path string `json:"path"`
	// Value is YAML: a scalar ("20", "3s", "off"), a list ("[rpc]") or a
	// mapping ("{latency: 3s}").
	Value string `json:"value"`
}

func (o Override) String() string { return o.Path + "=" + o.Value }

// ParseOverride reads "path=value".
func ParseOverride(s string) (Override, error) {
	path, value, ok := strings.Cut(s, "=")
	path = strings.TrimSpace(path)
	if !ok || path == "" {
		return Override{}, fmt.Errorf("--set %s: want path=value, e.g. --set load.rate=20 or --set 'method[0].for=10s'", s)
	}
	if strings.TrimSpace(value) == "" {
		return Override{}, fmt.Errorf("--set %s: give a value after '='", s)
	}
	return Override{Path: path, Value: value}, nil
}

// ParseWith reads an experiment file with overrides applied in order. An
// override whose path the format does not have, or whose value has the
// wrong type, is an error naming the --set; nothing else is read.
func ParseWith(data []byte, file string, sets []Override) (*Experiment, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &FieldError{File: file, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, &FieldError{File: file, Msg: "empty file"}
	}
	for _, o := range sets {
		if err := applyOverride(root.Content[0], o); err != nil {
			return nil, &FieldError{File: file, Set: &o, Msg: err.Error()}
		}
	}
	e := &Experiment{File: file, lines: map[string]int{}, Overrides: sets}
	d := &decoder{exp: e}
	if err := d.experiment(root.Content[0]); err != nil {
		return nil, e.blame(err)
	}
	return e, nil
}

// blame names the --set behind a field error about a field it set (or
// about a field inside a value it set).
func (e *Experiment) blame(err error) error {
	fe, ok := err.(*FieldError)
	if !ok || fe.Set != nil {
		return err
	}
	for i := len(e.Overrides) - 1; i >= 0; i-- {
		o := e.Overrides[i]
		inside := fe.Field == o.Path || strings.HasPrefix(fe.Field, o.Path+".") || strings.HasPrefix(fe.Field, o.Path+"[")
		// A field the override created (line 0) on its way to its path.
		above := fe.Line == 0 && (strings.HasPrefix(o.Path, fe.Field+".") || strings.HasPrefix(o.Path, fe.Field+"["))
		if inside || above {
			fe.Set = &e.Overrides[i]
			return fe
		}
	}
	return err
}

// pathStep is one step of an override path: a key or a list index.
type pathStep struct {
	key   string
	index int // -1 for a key
}

func splitPath(path string) ([]pathStep, error) {
	var out []pathStep
	for _, part := range strings.Split(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key == "" && len(out) == 0 || key == "" && rest == "" {
			return nil, fmt.Errorf("%q: empty field name (paths look like load.rate or method[0].for)", path)
		}
		if key != "" {
			out = append(out, pathStep{key: key, index: -1})
		}
		for rest != "" {
			n, tail, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(n)
			if !ok || err != nil || i < 0 {
				return nil, fmt.Errorf("%q: want a list index such as [0]", path)
			}
			out = append(out, pathStep{index: i})
			if tail == "" {
				break
			}
			if !strings.HasPrefix(tail, "[") {
				return nil, fmt.Errorf("%q: unexpected %q after ]", path, tail)
			}
			rest = tail[1:]
		}
	}
	return out, nil
}

// applyOverride puts o's value at o's path, creating the mappings on the
// way (a field the file leaves out), never list entries: an index must
// exist in the file.
func applyOverride(doc *yaml.Node, o Override) error {
	steps, err := splitPath(o.Path)
	if err != nil {
		return err
	}
	var val yaml.Node
	if err := yaml.Unmarshal([]byte(o.Value), &val); err != nil || len(val.Content) == 0 {
		return fmt.Errorf("the value %q is not a YAML value (quote it in the shell if it holds spaces)", o.Value)
	}
	value := val.Content[0]
	unplace(value) // line 0: not a line of the file
	cur := doc
	walked := ""
	for i, st := range steps {
		last := i == len(steps)-1
		if st.index >= 0 {
			if cur.Kind != yaml.SequenceNode {
				return fmt.Errorf("%s is not a list", orTop(walked))
			}
			if st.index >= len(cur.Content) {
				return fmt.Errorf("%s has %d entr%s, so there is no %s[%d] (--set changes fields of a file; add list entries in the file)",
					walked, len(cur.Content), plural(len(cur.Content), "y", "ies"), walked, st.index)
			}
			walked = fmt.Sprintf("%s[%d]", walked, st.index)
			if last {
				cur.Content[st.index] = value
				return nil
			}
			cur = cur.Content[st.index]
			continue
		}
		if cur.Kind == yaml.ScalarNode && cur.Tag == "!!null" {
			*cur = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		if cur.Kind != yaml.MappingNode {
			return fmt.Errorf("%s is not a mapping, so it has no field %s", orTop(walked), st.key)
		}
		walked = join(walked, st.key)
		var next *yaml.Node
		for k := 0; k+1 < len(cur.Content); k += 2 {
			if cur.Content[k].Value == st.key {
				next = cur.Content[k+1]
				if last {
					cur.Content[k+1] = value
					return nil
				}
			}
		}
		if next == nil {
			// A field the file leaves out: the decoder checks the name
			// against the format (and the error names this --set).
			next = value
			if !last {
				next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			}
			cur.Content = append(cur.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: st.key}, next)
			if last {
				return nil
			}
		}
		cur = next
	}
	return nil
}

func orTop(path string) string {
	if path == "" {
		return "the experiment"
	}
	return path
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// unplace clears the positions of nodes that come from the command line.
func unplace(n *yaml.Node) {
	n.Line, n.Column = 0, 0
	for _, c := range n.Content {
		unplace(c)
	}
}
