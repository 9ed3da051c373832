package kapi

import (
	"context"
	"fmt"
	"strings"

	"github.com/relaycdp/relay/internal/klaviyo"
)

// DeletionTarget names the profiles a data-privacy deletion job removes:
// exactly one of the fields, as Klaviyo rejects a job with several.
type DeletionTarget struct {
	Email       string
	PhoneNumber string // E.164
	ProfileID   string // Klaviyo's profile id
}

// String names the identifier kind, never its value (values are personal
// data and stay out of logs).
func (t DeletionTarget) String() string {
	switch {
	case t.Email != "":
		return "email"
	case t.PhoneNumber != "":
		return "phone_number"
	case t.ProfileID != "":
		return "profile id"
	}
	return "nothing"
}

func (t DeletionTarget) check() error {
	n := 0
	for _, v := range []string{t.Email, t.PhoneNumber, t.ProfileID} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: deletion target: want exactly one of email, phone number or profile id, got %d", ErrInvalidRequest, n)
	}
	if t.ProfileID != "" && strings.ContainsAny(t.ProfileID, "/?#% ") {
		return fmt.Errorf("%w: deletion target: profile id has characters no Klaviyo id has", ErrInvalidRequest)
	}
	return nil
}

// DeletionRequest is the POST /api/data-privacy-deletion-jobs request for
// t (request_profile_deletion in Klaviyo's spec).
func DeletionRequest(t DeletionTarget) (klaviyo.Request, error) {
	if err := t.check(); err != nil {
		return klaviyo.Request{}, err
	}
	profile := map[string]any{"type": "profile"}
	attrs := map[string]any{}
	switch {
	case t.Email != "":
		attrs["email"] = t.Email
	case t.PhoneNumber != "":
		attrs["phone_number"] = t.PhoneNumber
	default:
		profile["id"] = t.ProfileID
	}
	profile["attributes"] = attrs // required by the schema, even when empty
	return klaviyo.Request{Method: "POST", Path: "/api/data-privacy-deletion-jobs", Body: map[string]any{
		"data": map[string]any{
			"type":       "data-privacy-deletion-job",
			"attributes": map[string]any{"profile": map[string]any{"data": profile}},
		},
	}}, nil
}

// RequestProfileDeletion asks Klaviyo to delete every profile matching t,
// with Do's rate limiting and retries (3/s, 60/m per key). Klaviyo answers
// 202 and deletes asynchronously; a target matching no profile is
// accepted too. Errors are *Error (use ClassOf) or wrap ErrInvalidRequest.
func (c *Client) RequestProfileDeletion(ctx context.Context, apiKey string, t DeletionTarget) error {
	req, err := DeletionRequest(t)
	if err != nil {
		return err
	}
	if _, err := c.Do(ctx, apiKey, req); err != nil {
		return fmt.Errorf("request profile deletion by %s: %w", t, err)
	}
	return nil
}
