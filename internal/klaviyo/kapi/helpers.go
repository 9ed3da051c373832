package kapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/relaycdp/relay/internal/klaviyo"
)

// ImportJob is a profile bulk import job (GET
// /api/profile-bulk-import-jobs/{job_id}).
type ImportJob struct {
	ID string
	// Status is queued, processing, complete or cancelled.
	Status         string
	TotalCount     int
	CompletedCount int
	FailedCount    int
	// Times are zero when Klaviyo sends null or nothing.
	CreatedAt, StartedAt, CompletedAt, ExpiresAt time.Time
	// ListIDs and ProfileIDs are the job's lists and created/updated
	// profiles, when the response lists them.
	ListIDs    []string
	ProfileIDs []string
	// ImportErrorIDs are relationships.import-errors ids; ImportErrors
	// are the import-error objects themselves when the response includes
	// them ("included"), which gives per-item errors with pointers.
	ImportErrorIDs []string
	ImportErrors   []ImportError
}

// Done reports whether the job will not change any more.
func (j *ImportJob) Done() bool { return j.Status == "complete" || j.Status == "cancelled" }

// ImportError is one failed item of a profile import job.
type ImportError struct {
	ID      string
	Code    string
	Title   string
	Detail  string
	Pointer string
	// OriginalPayload is the item as submitted, when Klaviyo returns it.
	OriginalPayload json.RawMessage
}

type relData struct {
	Data []struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"data"`
}

func (r relData) ids() []string {
	var ids []string
	for _, d := range r.Data {
		ids = append(ids, d.ID)
	}
	return ids
}

// GetProfileImportJob fetches a profile bulk import job's status and counts,
// including the job's lists and import errors when Klaviyo returns them.
func (c *Client) GetProfileImportJob(ctx context.Context, apiKey, jobID string) (*ImportJob, error) {
	if jobID == "" || strings.ContainsAny(jobID, "/?#% ") {
		return nil, fmt.Errorf("%w: import job id %q", ErrInvalidRequest, jobID)
	}
	resp, err := c.Do(ctx, apiKey, klaviyo.Request{Method: "GET", Path: "/api/profile-bulk-import-jobs/" + jobID})
	if err != nil {
		return nil, fmt.Errorf("get profile import job: %w", err)
	}
	job, err := decodeImportJob(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("get profile import job: %w", err)
	}
	return job, nil
}

func decodeImportJob(body []byte) (*ImportJob, error) {
	var doc struct {
		Data *struct {
			ID         string `json:"id"`
			Attributes struct {
				Status         string  `json:"status"`
				TotalCount     *int    `json:"total_count"`
				CompletedCount *int    `json:"completed_count"`
				FailedCount    *int    `json:"failed_count"`
				CreatedAt      *string `json:"created_at"`
				StartedAt      *string `json:"started_at"`
				CompletedAt    *string `json:"completed_at"`
				ExpiresAt      *string `json:"expires_at"`
			} `json:"attributes"`
			Relationships struct {
				Lists        relData `json:"lists"`
				Profiles     relData `json:"profiles"`
				ImportErrors relData `json:"import-errors"`
			} `json:"relationships"`
		} `json:"data"`
		Included []importErrorDoc `json:"included"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode import job: %w", err)
	}
	if doc.Data == nil || doc.Data.ID == "" || doc.Data.Attributes.Status == "" {
		return nil, fmt.Errorf("decode import job: missing data.id or data.attributes.status")
	}
	d := doc.Data
	a := d.Attributes
	job := &ImportJob{
		ID:             d.ID,
		Status:         a.Status,
		TotalCount:     deref(a.TotalCount),
		CompletedCount: deref(a.CompletedCount),
		FailedCount:    deref(a.FailedCount),
		CreatedAt:      parseTime(a.CreatedAt),
		StartedAt:      parseTime(a.StartedAt),
		CompletedAt:    parseTime(a.CompletedAt),
		ExpiresAt:      parseTime(a.ExpiresAt),
		ListIDs:        d.Relationships.Lists.ids(),
		ProfileIDs:     d.Relationships.Profiles.ids(),
		ImportErrorIDs: d.Relationships.ImportErrors.ids(),
	}
	for _, inc := range doc.Included {
		if inc.Type == "import-error" {
			job.ImportErrors = append(job.ImportErrors, inc.importError())
		}
	}
	return job, nil
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// parseTime accepts Klaviyo's ISO 8601 timestamps (with or without
// fraction and zone); anything else is the zero time.
func parseTime(s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, *s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// lookupField reports whether LookupProfiles can filter on field (the
// identifiers the spec allows with `equals`).
func lookupField(field string) bool {
	switch field {
	case "email", "phone_number", "external_id", "id":
		return true
	}
	return false
}

// maxLookupPages bounds LookupProfiles' pagination; an identifier that
// matches more than this many pages of profiles is not an identifier.
const maxLookupPages = 10

// LookupProfiles returns the ids of the profiles whose field (email,
// phone_number, external_id or id) equals value, via GET
// /api/profiles?filter=equals(field,"value"). Phone numbers must be E.164.
func (c *Client) LookupProfiles(ctx context.Context, apiKey string, field, value string) ([]string, error) {
	if !lookupField(field) {
		return nil, fmt.Errorf("%w: lookup field %q: want email, phone_number, external_id or id", ErrInvalidRequest, field)
	}
	if value == "" {
		return nil, fmt.Errorf("%w: lookup %s: empty value", ErrInvalidRequest, field)
	}
	q := url.Values{}
	q.Set("filter", fmt.Sprintf("equals(%s,%s)", field, filterString(value)))
	q.Set("fields[profile]", "id")
	q.Set("page[size]", "100")
	var ids []string
	for page := 0; ; page++ {
		resp, err := c.Do(ctx, apiKey, klaviyo.Request{Method: "GET", Path: "/api/profiles", Query: q.Encode()})
		if err != nil {
			return nil, fmt.Errorf("lookup profiles by %s: %w", field, err)
		}
		var doc struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			Links struct {
				Next *string `json:"next"`
			} `json:"links"`
		}
		if err := json.Unmarshal(resp.Body, &doc); err != nil {
			return nil, fmt.Errorf("lookup profiles by %s: decode: %w", field, err)
		}
		for _, d := range doc.Data {
			if d.ID != "" {
				ids = append(ids, d.ID)
			}
		}
		cursor := nextCursor(doc.Links.Next)
		if cursor == "" {
			return ids, nil
		}
		if page+1 >= maxLookupPages {
			return nil, fmt.Errorf("lookup profiles by %s: more than %d pages of matches", field, maxLookupPages)
		}
		q.Set("page[cursor]", cursor)
	}
}

// filterString quotes a value for Klaviyo's filter syntax: a
// double-quoted string in which backslash and double quote are escaped.
func filterString(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// nextCursor extracts page[cursor] from a links.next URL.
func nextCursor(next *string) string {
	if next == nil || *next == "" {
		return ""
	}
	u, err := url.Parse(*next)
	if err != nil {
		return ""
	}
	return u.Query().Get("page[cursor]")
}

// Ping makes the cheapest authenticated read (GET
// /api/profiles?fields[profile]=id&page[size]=1) to check the key and
// connectivity, for the console's "test connection". A bad key is a
// Permanent *Error with status 401 or 403.
func (c *Client) Ping(ctx context.Context, apiKey string) error {
	_, err := c.Do(ctx, apiKey, klaviyo.Request{Method: "GET", Path: "/api/profiles", Query: "fields%5Bprofile%5D=id&page%5Bsize%5D=1"})
	if err != nil {
		return fmt.Errorf("ping klaviyo: %w", err)
	}
	return nil
}

// maxImportErrorPages bounds ImportErrors' pagination: a job holds at most
// 10,000 profiles, 100 pages of 100 errors.
const maxImportErrorPages = 100

// ImportErrors returns a finished profile import job's per-item errors
// (GET /api/profile-bulk-import-jobs/{id}/import-errors, every page of
// 100), each with the pointer into the job's request that names its item.
func (c *Client) ImportErrors(ctx context.Context, apiKey, jobID string) ([]ImportError, error) {
	if jobID == "" || strings.ContainsAny(jobID, "/?#% ") {
		return nil, fmt.Errorf("%w: import job id %q", ErrInvalidRequest, jobID)
	}
	q := url.Values{}
	q.Set("page[size]", "100")
	var out []ImportError
	for page := 0; ; page++ {
		resp, err := c.Do(ctx, apiKey, klaviyo.Request{Method: "GET", Path: "/api/profile-bulk-import-jobs/" + jobID + "/import-errors", Query: q.Encode()})
		if err != nil {
			return out, fmt.Errorf("get import errors: %w", err)
		}
		var doc struct {
			Data  []importErrorDoc `json:"data"`
			Links struct {
				Next *string `json:"next"`
			} `json:"links"`
		}
		if err := json.Unmarshal(resp.Body, &doc); err != nil {
			return out, fmt.Errorf("get import errors: decode: %w", err)
		}
		for _, d := range doc.Data {
			out = append(out, d.importError())
		}
		cursor := nextCursor(doc.Links.Next)
		if cursor == "" {
			return out, nil
		}
		if page+1 >= maxImportErrorPages {
			return out, fmt.Errorf("get import errors: more than %d pages", maxImportErrorPages)
		}
		q.Set("page[cursor]", cursor)
	}
}

// importErrorDoc is one import-error resource.
type importErrorDoc struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Attributes struct {
		Code   string `json:"code"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Source struct {
			Pointer string `json:"pointer"`
		} `json:"source"`
		OriginalPayload json.RawMessage `json:"original_payload"`
	} `json:"attributes"`
}

func (d importErrorDoc) importError() ImportError {
	a := d.Attributes
	return ImportError{ID: d.ID, Code: a.Code, Title: a.Title, Detail: a.Detail, Pointer: a.Source.Pointer, OriginalPayload: a.OriginalPayload}
}
