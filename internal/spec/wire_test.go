package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestParseWire parses the bodies real SDKs sent (clients.md §5, copied to
// testdata/wire) and checks every normalised field. Expected timestamps are
// worked out by hand: timestamp = receivedAt − (sentAt − originalTimestamp).
func TestParseWire(t *testing.T) {
	tests := []struct {
		file         string
		opts         Options
		wantWriteKey string
		want         []Event
	}{{
		// Envelope sentAt, per-event timestamp (no originalTimestamp),
		// writeKey in the body, _metadata dropped, empty integrations → nil.
		file:         "analytics-node-3.1.0.json",
		opts:         Options{ReceivedAt: ts("2026-11-23T00:00:30Z")},
		wantWriteKey: "WK_test123",
		want: []Event{{
			Type:              TypeIdentify,
			MessageID:         "node-next-1795392029319-89ea1415-fc2f-4163-964d-8d152fbd8ad3",
			UserID:            "user-42",
			Traits:            obj(`{"email":"jane@example.com","firstName":"Jane"}`),
			Context:           obj(`{"library":{"name":"@segment/analytics-node","version":"3.1.0"}}`),
			Timestamp:         ts("2026-11-23T00:00:29.993Z"), // 30.000 − (29.326 − 29.319)
			OriginalTimestamp: ts("2026-11-23T00:00:29.319Z"),
			SentAt:            ts("2026-11-23T00:00:29.326Z"),
			ReceivedAt:        ts("2026-11-23T00:00:30Z"),
		}, {
			Type:      TypeTrack,
			MessageID: "node-next-1795392029319-1415fc2f-8163-464d-8d15-2fbd8ad34d69",
			UserID:    "user-42",
			Event:     "Order Completed",
			Properties: obj(`{"order_id":"o-1","revenue":25,"currency":"USD","products":[
				{"product_id":"p-1","sku":"SKU-1","name":"Mug","price":12.5,"quantity":2}]}`),
			Context:           obj(`{"library":{"name":"@segment/analytics-node","version":"3.1.0"}}`),
			Timestamp:         ts("2026-11-23T00:00:29.993Z"),
			OriginalTimestamp: ts("2026-11-23T00:00:29.319Z"),
			SentAt:            ts("2026-11-23T00:00:29.326Z"),
			ReceivedAt:        ts("2026-11-23T00:00:30Z"),
		}},
	}, {
		// traits duplicated into context.traits; per-event originalTimestamp
		// and sentAt; envelope timestamp ignored; channel dropped; no writeKey.
		file: "rudder-sdk-node-3.0.13.json",
		opts: Options{ReceivedAt: ts("2026-11-23T00:00:35Z")},
		want: []Event{{
			Type:      TypeIdentify,
			MessageID: "e9970116-dca9-48d6-949f-c61814539228",
			UserID:    "user-42",
			Traits:    obj(`{"email":"jane@example.com","firstName":"Jane"}`),
			Context: obj(`{"traits":{"email":"jane@example.com","firstName":"Jane"},
				"library":{"name":"analytics-node","version":"3.0.13"}}`),
			Timestamp:         ts("2026-11-23T00:00:34.999Z"), // 35.000 − (34.386 − 34.385)
			OriginalTimestamp: ts("2026-11-23T00:00:34.385Z"),
			SentAt:            ts("2026-11-23T00:00:34.386Z"),
			ReceivedAt:        ts("2026-11-23T00:00:35Z"),
		}},
	}, {
		// context.library only at envelope level; nanosecond timestamps;
		// envelope sentAt and messageId.
		file: "segment-analytics-go-3.3.0.json",
		opts: Options{ReceivedAt: ts("2026-11-23T00:01:14Z")},
		want: []Event{{
			Type:              TypeIdentify,
			MessageID:         "b4db1927-d15e-48c9-ad53-80e5bb033bee",
			UserID:            "user-42",
			Traits:            obj(`{"email":"jane@example.com","firstName":"Jane"}`),
			Context:           obj(`{"library":{"name":"analytics-go","version":"3.0.0"}}`),
			Timestamp:         ts("2026-11-23T00:01:13.999652154Z"), // 14 − (.686270372 − .685922526)
			OriginalTimestamp: ts("2026-11-23T00:01:13.685922526Z"),
			SentAt:            ts("2026-11-23T00:01:13.686270372Z"),
			ReceivedAt:        ts("2026-11-23T00:01:14Z"),
		}, {
			Type:              TypeTrack,
			MessageID:         "1166f203-23f7-4707-aa66-2b730f734ac5",
			UserID:            "user-42",
			Event:             "Product Viewed",
			Properties:        obj(`{"price":12.5,"product_id":"p-1"}`),
			Context:           obj(`{"library":{"name":"analytics-go","version":"3.0.0"}}`),
			Timestamp:         ts("2026-11-23T00:01:13.999654418Z"), // 14 − (.686270372 − .68592479)
			OriginalTimestamp: ts("2026-11-23T00:01:13.68592479Z"),
			SentAt:            ts("2026-11-23T00:01:13.686270372Z"),
			ReceivedAt:        ts("2026-11-23T00:01:14Z"),
		}},
	}, {
		// Nanosecond originalTimestamp and sentAt per event, envelope {batch} only.
		file: "rudder-analytics-go-4.2.3.json",
		opts: Options{ReceivedAt: ts("2026-11-23T00:01:14Z")},
		want: []Event{{
			Type:              TypeIdentify,
			MessageID:         "2d747569-8be6-4430-bfe9-bfa21a89c907",
			UserID:            "user-42",
			Traits:            obj(`{"email":"jane@example.com","firstName":"Jane"}`),
			Context:           obj(`{"library":{"name":"analytics-go","version":"4.2.3"}}`),
			Timestamp:         ts("2026-11-23T00:01:13.999694828Z"), // 14 − (.695608995 − .695303823)
			OriginalTimestamp: ts("2026-11-23T00:01:13.695303823Z"),
			SentAt:            ts("2026-11-23T00:01:13.695608995Z"),
			ReceivedAt:        ts("2026-11-23T00:01:14Z"),
		}, {
			Type:              TypeTrack,
			MessageID:         "2ee4246d-7200-4c52-bb90-1f112906ac9f",
			UserID:            "user-42",
			AnonymousID:       "dd019af8-9a20-4d26-a8e9-a890f4985187",
			Event:             "Product Viewed",
			Properties:        obj(`{"price":12.5,"product_id":"p-1"}`),
			Context:           obj(`{"library":{"name":"analytics-go","version":"4.2.3"}}`),
			Timestamp:         ts("2026-11-23T00:01:13.999698233Z"), // 14 − (.695608995 − .695307228)
			OriginalTimestamp: ts("2026-11-23T00:01:13.695307228Z"),
			SentAt:            ts("2026-11-23T00:01:13.695608995Z"),
			ReceivedAt:        ts("2026-11-23T00:01:14Z"),
		}},
	}, {
		// A single event posted to /v1/i with writeKey and sentAt in the body.
		file:         "analytics-next-1.84.3-identify.json",
		opts:         Options{ReceivedAt: ts("2026-11-23T00:03:14Z"), DefaultType: TypeIdentify, MaxEventBytes: 32 << 10},
		wantWriteKey: "WK_test123",
		want: []Event{{
			Type:        TypeIdentify,
			MessageID:   "ajs-next-1795392193318-0ae00b16-feb4-4bff-b85d-a1108a08c67e",
			UserID:      "user-42",
			AnonymousID: "e00b16fe-b4ab-4ff8-9da1-108a08c67e56",
			Traits:      obj(`{"email":"jane@example.com"}`),
			Context: obj(`{"page":{"path":"/page.html","referrer":"","search":"","title":"probe","url":"http://127.0.0.1:18085/page.html"},
				"userAgent":"Mozilla/5.0 … HeadlessChrome/148.0.0.0 Safari/537.36",
				"userAgentData":{"brands":[{"brand":"Chromium","version":"148"}],"mobile":false,"platform":"Linux"},
				"locale":"en-US","library":{"name":"analytics.js","version":"next-1.84.3"},"timezone":"UTC"}`),
			Integrations:      obj(`{"Segment.io":true}`),
			Bundled:           []string{"Segment.io"},         // _metadata.bundled
			Timestamp:         ts("2026-11-23T00:03:13.973Z"), // 14.000 − (13.345 − 13.318)
			OriginalTimestamp: ts("2026-11-23T00:03:13.318Z"),
			SentAt:            ts("2026-11-23T00:03:13.345Z"),
			ReceivedAt:        ts("2026-11-23T00:03:14Z"),
		}},
	}}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(tc.file, ".json"), func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "wire", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			b, err := Parse(body, tc.opts)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if b.WriteKey != tc.wantWriteKey {
				t.Errorf("WriteKey = %q, want %q", b.WriteKey, tc.wantWriteKey)
			}
			var want []Item
			for _, ev := range tc.want {
				want = append(want, Item{Event: ev})
			}
			if d := cmp.Diff(want, b.Items); d != "" {
				t.Errorf("items (-want +got):\n%s", d)
			}
			for _, it := range b.Items {
				roundTrip(t, it.Event)
				if got := it.Event.Timestamp.Location(); got != time.UTC {
					t.Errorf("timestamp location = %v, want UTC", got)
				}
			}
		})
	}
}

// TestWireTraitsAndKey checks what the mapping will read from the captures:
// the user's traits and the queue ordering key.
func TestWireTraitsAndKey(t *testing.T) {
	tests := []struct {
		file       string
		wantTraits []map[string]any
		wantKeys   []string
	}{
		{"analytics-node-3.1.0.json", []map[string]any{obj(`{"email":"jane@example.com","firstName":"Jane"}`), nil}, []string{"user-42", "user-42"}},
		{"rudder-sdk-node-3.0.13.json", []map[string]any{obj(`{"email":"jane@example.com","firstName":"Jane"}`)}, []string{"user-42"}},
		{"analytics-next-1.84.3-identify.json", []map[string]any{obj(`{"email":"jane@example.com"}`)}, []string{"user-42"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "wire", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			b, err := Parse(body, Options{ReceivedAt: ts("2026-11-23T00:00:00Z")})
			if err != nil {
				t.Fatal(err)
			}
			var traits []map[string]any
			var keys []string
			for _, it := range b.Items {
				traits = append(traits, it.Event.UserTraits())
				keys = append(keys, it.Event.Key())
			}
			if d := cmp.Diff(tc.wantTraits, traits); d != "" {
				t.Errorf("UserTraits (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantKeys, keys); d != "" {
				t.Errorf("Key (-want +got):\n%s", d)
			}
		})
	}
}
