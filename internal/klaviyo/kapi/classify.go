package kapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
)

// Class is what a caller should do about a call's outcome.
type Class int

const (
	// OK means the call succeeded (2xx); ClassOf(nil) is OK.
	OK Class = iota
	// Retryable: 5xx except 501, 408, timeouts and network errors (the
	// request may or may not have reached Klaviyo). Retry with backoff.
	Retryable
	// Throttled: 429. Retry no sooner than Error.RetryAfter.
	Throttled
	// Permanent: any other 4xx (and 501, unexpected 1xx/3xx, bad input).
	// Retrying the same request cannot succeed.
	Permanent
)

func (c Class) String() string {
	switch c {
	case OK:
		return "ok"
	case Retryable:
		return "retryable"
	case Throttled:
		return "throttled"
	case Permanent:
		return "permanent"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Classify is the one place a Klaviyo outcome becomes a Class. status is
// the HTTP status (0 if no response was received) and err the transport or
// client error, if any. A non-nil err wins over status.
//
//   - *Error: its own Class.
//   - context.Canceled / DeadlineExceeded, *url.Error (everything
//     http.Client.Do returns: dial errors, resets, EOF, timeouts) and
//     net.Error: Retryable. A timed-out POST may have been applied; the
//     endpoints Relay uses are idempotent or deduplicated by unique_id.
//   - any other error (bad request value, marshal error): Permanent.
//   - 2xx: OK; 429: Throttled; 408 and 5xx except 501: Retryable;
//     everything else: Permanent.
func Classify(status int, err error) Class {
	if err != nil {
		var ke *Error
		if errors.As(err, &ke) {
			return ke.Class
		}
		var ue *url.Error
		var ne net.Error
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return Retryable
		case errors.As(err, &ue), errors.As(err, &ne):
			return Retryable
		}
		return Permanent
	}
	switch {
	case status >= 200 && status < 300:
		return OK
	case status == http.StatusTooManyRequests:
		return Throttled
	case status == http.StatusRequestTimeout:
		return Retryable
	case status >= 500 && status < 600 && status != http.StatusNotImplemented:
		return Retryable
	}
	return Permanent
}

// ClassOf classifies an error returned by this package (or any error):
// the Class of the *Error in its chain, else Classify(0, err). ClassOf(nil)
// is OK.
func ClassOf(err error) Class {
	if err == nil {
		return OK
	}
	return Classify(0, err)
}
