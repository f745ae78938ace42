// Go's own regexp package (the standard library of Debian's golang-go), as the reference for
// kiam's regular expressions: Go kiam compiled --allow-route-regexp and the namespaces'
// iam.amazonaws.com/permitted with it.
//
// Reads one JSON object per line, {"pattern": "...", "inputs": ["...", ...]}, and writes one per
// line: {"error": "<Go's error text>"} when the pattern does not compile, else
// {"matches": [...], "whole": [...]}: MatchString of each input, and the match of the parsed
// pattern anchored at both ends (the parse tree between \A and \z, printed back by Go's own
// syntax package: splicing text, ^(?:pattern)$, breaks on patterns such as \Q...).
package main

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"regexp/syntax"
)

type request struct {
	Pattern string   `json:"pattern"`
	Inputs  []string `json:"inputs"`
}

type answer struct {
	Error   *string `json:"error,omitempty"`
	Matches []bool  `json:"matches"`
	Whole   []bool  `json:"whole"`
}

func main() {
	input := bufio.NewScanner(os.Stdin)
	input.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for input.Scan() {
		var r request
		if err := json.Unmarshal(input.Bytes(), &r); err != nil {
			panic(err)
		}
		re, err := regexp.Compile(r.Pattern)
		if err != nil {
			text := err.Error()
			out.Encode(answer{Error: &text})
			continue
		}
		tree, err := syntax.Parse(r.Pattern, syntax.Perl)
		if err != nil {
			panic(err)
		}
		anchored := &syntax.Regexp{Op: syntax.OpConcat, Sub: []*syntax.Regexp{{Op: syntax.OpBeginText}, tree, {Op: syntax.OpEndText}}}
		whole := regexp.MustCompile(anchored.String())
		a := answer{Matches: []bool{}, Whole: []bool{}}
		for _, s := range r.Inputs {
			a.Matches = append(a.Matches, re.MatchString(s))
			a.Whole = append(a.Whole, whole.MatchString(s))
		}
		out.Encode(a)
	}
}
