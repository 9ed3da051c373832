package app

import (
	"github.com/relaycdp/relay/internal/destination"
	"github.com/relaycdp/relay/internal/klaviyo/kdest"
	"github.com/relaycdp/relay/internal/webhook"
)

// Types registers every destination type relay serve, the console and
// config accept: adding a destination is one line here (docs/DEVELOPING.md).
func Types() (*destination.Registry, error) {
	return destination.NewRegistry(
		kdest.Type(),
		webhook.Type(),
	)
}
