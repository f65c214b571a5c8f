package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// kafkaEffect sets a protocol fault on the embedded broker through its
// admin endpoint (lab/broker: POST /admin/kafka/faults, DELETE
// /admin/kafka/faults/{id}); the fault's id ties the two together.
type kafkaEffect struct {
	inj    *Injector
	broker string // the broker part
	id     string
	kind   Kind
	params Params
}

const adminKafkaFaults = "/admin/kafka/faults"

func (e *kafkaEffect) apply(ctx context.Context) error {
	// The broker knows the fault by the catalog's name; parameters go as
	// JSON numbers or text, by their type.
	body := map[string]any{"id": e.id, "kind": e.kind.Name, "partition": -1}
	for _, p := range e.kind.Params {
		switch p.Type {
		case ParamInt:
			body[p.Name] = int(e.params.Int(p.Name))
		case ParamFloat, ParamFraction:
			body[p.Name] = e.params.Float(p.Name)
		default:
			body[p.Name] = e.params[p.Name]
		}
	}
	code, msg, err := e.call(ctx, http.MethodPost, adminKafkaFaults, body)
	if err != nil {
		return err
	}
	return answerError(e.broker, adminKafkaFaults, code, msg)
}

// heal removes the fault. A broker restarted in between has forgotten it
// (404): nothing is left to heal.
func (e *kafkaEffect) heal(ctx context.Context, _ bool) error {
	path := adminKafkaFaults + "/" + e.id
	code, msg, err := e.call(ctx, http.MethodDelete, path, nil)
	if err != nil || code == http.StatusNotFound {
		return err
	}
	return answerError(e.broker, path, code, msg)
}

func (e *kafkaEffect) call(ctx context.Context, method, path string, body any) (int, []byte, error) {
	addr, ok := e.inj.cfg.Targets.Kafka[e.broker]
	if !ok {
		return 0, nil, fmt.Errorf("%s takes no protocol faults (not an embedded broker of this lab)", e.broker)
	}
	code, msg, err := adminCall(ctx, e.inj.http, addr, method, path, body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", e.broker, path, err)
	}
	return code, msg, nil
}

// kafkaFaultsInForce lists the protocol faults a broker holds that the
// injector did not set (posted to its admin endpoint by hand, or left by an
// injector that is gone).
func (inj *Injector) kafkaFaultsInForce(ctx context.Context, broker, addr string, ours map[string]bool) []ExternalFault {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	code, body, err := adminCall(ctx, inj.http, addr, http.MethodGet, adminKafkaFaults, nil)
	if err != nil || code != http.StatusOK {
		return nil // a broker that does not answer has none to report
	}
	var got struct {
		Faults []struct {
			ID     string `json:"id"`
			Kind   string `json:"kind"`
			Detail string `json:"detail"`
		} `json:"faults"`
	}
	if json.Unmarshal(body, &got) != nil {
		return nil
	}
	var out []ExternalFault
	for _, f := range got.Faults {
		if !ours[f.ID] {
			out = append(out, ExternalFault{Kind: f.Kind, Target: broker, Detail: fmt.Sprintf("id %s: %s", f.ID, f.Detail), Via: "admin endpoint"})
		}
	}
	return out
}
