package presink

// GoldenSettings is goldenSettings for the external delivery test
// (sim_test.go), which imports the Klaviyo sink that imports this package.
var GoldenSettings = goldenSettings
