package webserver

import (
	"context"
	"net/http"
	"time"

	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/model"
)

// ContractAnswer is what a webserver's /admin/contract answers: the rating
// contract its producer side now writes and, where a schema registry
// decides, its decision.
type ContractAnswer struct {
	Contract model.Contract `json:"contract"`
	// Format is the log's event format (stream), or "json-http" (rpc).
	Format string `json:"format"`
	// Registry is "accepted", "refused" or "unreachable" when a registry
	// decided (Avro), "" when none does (JSON).
	Registry string `json:"registry,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Contracts is a webserver's producer side, as the schema-change fault
// deploys contract versions on it.
type Contracts interface {
	// Deploy switches the contract (whatever a registry says, as a real
	// deploy would) and reports the registry's decision.
	Deploy(ctx context.Context, c model.Contract) ContractAnswer
	Current() ContractAnswer
}

// deployTimeout bounds one deploy (a registry registration at most).
const deployTimeout = 5 * time.Second

// RegisterContractAdmin adds the schema-change fault's endpoint:
//
//	POST   /admin/contract {"contract":"v2-rename-field"}  deploy another rating contract
//	DELETE /admin/contract                                  back to v1
//	GET    /admin/contract                                  what is deployed
func RegisterContractAdmin(srv *serve.Server, cs Contracts) {
	deploy := func(w http.ResponseWriter, r *http.Request, c model.Contract) {
		ctx, cancel := context.WithTimeout(r.Context(), deployTimeout)
		defer cancel()
		serve.WriteJSON(w, http.StatusOK, cs.Deploy(ctx, c))
	}
	srv.HandleAdmin("POST /admin/contract", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Contract string `json:"contract"`
		}
		if err := serve.DecodeJSON(w, r, &req); err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		c, err := model.ParseContract(req.Contract)
		if err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		deploy(w, r, c)
	}))
	srv.HandleAdmin("DELETE /admin/contract", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deploy(w, r, model.ContractV1)
	}))
	srv.HandleAdmin("GET /admin/contract", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve.WriteJSON(w, http.StatusOK, cs.Current())
	}))
}
