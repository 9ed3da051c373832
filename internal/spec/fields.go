package spec

import "bytes"

// field numbers the top-level keys Parse reads from an event or envelope.
type field int

const (
	fType field = iota
	fMessageID
	fUserID
	fAnonymousID
	fEvent
	fName
	fCategory
	fGroupID
	fPreviousID
	fTraits
	fProperties
	fContext
	fIntegrations
	fTimestamp
	fOriginalTimestamp
	fSentAt
	fReceivedAt
	fWriteKey
	fBatch
	fDestinations
	fMetadata
	nFields
	fUnknown field = -1
)

// fields holds the raw value of each known key of one JSON object; nil
// means absent. The slices share the request body's bytes.
type fields [nFields][]byte

// splitFields reads the known top-level keys of the object obj (validated
// JSON starting with '{'). A repeated key's last value wins, as in
// encoding/json.
func splitFields(obj []byte) fields {
	var f fields
	it := newObjIter(obj)
	for {
		k, v, ok := it.next()
		if !ok {
			return f
		}
		if i := fieldOf(k); i != fUnknown {
			f[i] = v
		}
	}
}

// fieldOf maps a raw (quoted) key to its field. Keys are case-sensitive,
// as in Segment's spec.
func fieldOf(key []byte) field {
	if len(key) < 2 {
		return fUnknown
	}
	inner := key[1 : len(key)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		inner = []byte(keyString(key))
	}
	switch string(inner) {
	case "type":
		return fType
	case "messageId":
		return fMessageID
	case "userId":
		return fUserID
	case "anonymousId":
		return fAnonymousID
	case "event":
		return fEvent
	case "name":
		return fName
	case "category":
		return fCategory
	case "groupId":
		return fGroupID
	case "previousId":
		return fPreviousID
	case "traits":
		return fTraits
	case "properties":
		return fProperties
	case "context":
		return fContext
	case "integrations":
		return fIntegrations
	case "timestamp":
		return fTimestamp
	case "originalTimestamp":
		return fOriginalTimestamp
	case "sentAt":
		return fSentAt
	case "receivedAt":
		return fReceivedAt
	case "writeKey":
		return fWriteKey
	case "batch":
		return fBatch
	case "destinations":
		return fDestinations
	case "_metadata":
		return fMetadata
	}
	return fUnknown
}

// fieldName is the JSON key of f, for error messages.
func fieldName(f field) string {
	switch f {
	case fType:
		return "type"
	case fMessageID:
		return "messageId"
	case fUserID:
		return "userId"
	case fAnonymousID:
		return "anonymousId"
	case fEvent:
		return "event"
	case fName:
		return "name"
	case fCategory:
		return "category"
	case fGroupID:
		return "groupId"
	case fPreviousID:
		return "previousId"
	case fTraits:
		return "traits"
	case fProperties:
		return "properties"
	case fContext:
		return "context"
	case fIntegrations:
		return "integrations"
	case fTimestamp:
		return "timestamp"
	case fOriginalTimestamp:
		return "originalTimestamp"
	case fSentAt:
		return "sentAt"
	case fReceivedAt:
		return "receivedAt"
	case fWriteKey:
		return "writeKey"
	case fBatch:
		return "batch"
	case fDestinations:
		return "destinations"
	case fMetadata:
		return "_metadata"
	}
	return ""
}
