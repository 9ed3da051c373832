// Package e2e holds Relay's end-to-end tests: a real `relay serve` process
// fed by unchanged Segment and RudderStack SDKs (Node, Go and analytics-next
// in headless Chromium), delivering to the Klaviyo simulator, killed with
// SIGKILL mid-stream, and faced with throttling, server errors and bad input.
package e2e
