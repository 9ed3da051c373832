package usertransform

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name  string
		cfg   FilterConfig
		drop  bool
		props map[string]any
	}{
		{"no condition keeps", FilterConfig{}, false, event().Properties},
		{"matching condition drops", FilterConfig{Drop: `type == "track" && event startsWith "Order"`}, true, nil},
		{"non-matching keeps", FilterConfig{Drop: `properties.total > 100`}, false, event().Properties},
		{"missing keys read as nil", FilterConfig{Drop: `properties.nope == "x" || context?.ip == "1"`}, false, event().Properties},
		{"rename and remove", FilterConfig{Rename: map[string]string{"coupon": "coupon_code", "total": "coupon"}, Remove: []string{"diagnosis"}}, false,
			map[string]any{"coupon_code": "X", "coupon": float64(30)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := CompileFilter(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			in := event()
			out, drop, err := f.Apply(&in)
			if err != nil || drop != tt.drop {
				t.Fatalf("drop = %v, %v; want %v", drop, err, tt.drop)
			}
			if !drop {
				if diff := cmp.Diff(tt.props, out.Properties); diff != "" {
					t.Errorf("properties (-want +got):\n%s", diff)
				}
			}
			if in.Properties["diagnosis"] != "flu" {
				t.Error("Apply changed its input")
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	for _, c := range []FilterConfig{{Drop: "type =="}, {Drop: `"a string"`}, {Rename: map[string]string{"a": ""}}, {Remove: []string{" "}}} {
		_, err := CompileFilter(c)
		var e *Error
		if !errors.As(err, &e) || e.Code != "compile" {
			t.Errorf("CompileFilter(%+v) = %v, want a compile error", c, err)
		}
	}
}
