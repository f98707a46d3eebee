package review

// The review's escaping of text from servers and declarations, for the
// other renderers of GitHub markdown (the rollout comment, package
// announce): one escaping, used everywhere, and fuzzed here.

// Prose makes a sentence from a server or a declaration safe as markdown
// text, shown as written (see prose).
func Prose(s string) string { return prose(s) }

// Code renders text as one inline code span, whatever backticks it holds.
func Code(s string) string { return code(s) }

// CodeCell is Code for a table cell.
func CodeCell(s string) string { return codeCell(s) }

// Cell makes text safe inside a table cell and inert as HTML.
func Cell(s string) string { return cell(s) }

// LinkTarget makes a URL safe as a link's destination: http(s) only, and
// nothing that could end the destination or the line; false otherwise.
func LinkTarget(raw string) (string, bool) { return linkTarget(raw) }
