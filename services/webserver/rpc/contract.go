package rpc

import (
	"context"

	"github.com/ratingslab/lab/services/model"
	ratingsrpc "github.com/ratingslab/lab/services/ratings/rpc"
	"github.com/ratingslab/lab/services/webserver"
)

// contracts deploys rating contracts on webserver-rpc's calls to
// ratings-rpc. No registry decides: the first call after the deploy finds
// out whether ratings-rpc still understands it.
type contracts struct{ client *ratingsrpc.Client }

func (c contracts) Current() webserver.ContractAnswer {
	return webserver.ContractAnswer{Contract: c.client.Contract(), Format: "json-http"}
}

func (c contracts) Deploy(_ context.Context, v model.Contract) webserver.ContractAnswer {
	c.client.SetContract(v)
	return c.Current()
}
