package kapi

import (
	"github.com/relaycdp/relay/internal/ratelimit"
)

// The shared rate-limit state lives in internal/ratelimit, which the
// store implements without knowing Klaviyo; these names keep kapi's API.
type (
	Limiter     = ratelimit.Limiter
	Bucket      = ratelimit.Bucket
	BucketState = ratelimit.BucketState
)

// sharedBucket is a request's view of its Bucket in Config.Limiter.
type sharedBucket struct {
	l Limiter
	b Bucket
}
