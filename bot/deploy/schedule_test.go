package deploy

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// checkSchedule validates an EventBridge schedule expression:
//
//   - rate(N unit): N a positive whole number; unit minute(s), hour(s) or
//     day(s), singular exactly when N is 1 ("rate(1 hours)" and
//     "rate(5 hour)" are refused).
//   - cron(minutes hours day-of-month month day-of-week year): six fields,
//     each "*", a value, a range a-b, a list a,b,c or an increment x/n,
//     within the field's bounds; months JAN-DEC and weekdays SUN-SAT (1-7)
//     by name too; L, W and # in the day fields; exactly one of
//     day-of-month and day-of-week is "?".
func checkSchedule(expr string) error {
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		return checkRate(expr[len("rate(") : len(expr)-1])
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		return checkCron(expr[len("cron(") : len(expr)-1])
	}
	return fmt.Errorf("%q is neither rate(...) nor cron(...)", expr)
}

func checkRate(body string) error {
	fields := strings.Split(body, " ")
	if len(fields) != 2 {
		return fmt.Errorf("rate(%s): want rate(value unit)", body)
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 || fields[0] != strconv.Itoa(n) {
		return fmt.Errorf("rate(%s): %q is not a positive whole number", body, fields[0])
	}
	unit := fields[1]
	base := strings.TrimSuffix(unit, "s")
	if base != "minute" && base != "hour" && base != "day" {
		return fmt.Errorf("rate(%s): unit %q is not minute(s), hour(s) or day(s)", body, unit)
	}
	if plural := unit != base; plural != (n != 1) {
		if n == 1 {
			return fmt.Errorf("rate(%s): a value of 1 takes the singular %q", body, base)
		}
		return fmt.Errorf("rate(%s): a value above 1 takes the plural %q", body, base+"s")
	}
	return nil
}

// cronField describes one field of a cron expression.
type cronField struct {
	name     string
	min, max int
	names    []string // names[i] stands for min+i
}

var cronFields = []cronField{
	{name: "minutes", min: 0, max: 59},
	{name: "hours", min: 0, max: 23},
	{name: "day-of-month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: strings.Fields("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC")},
	{name: "day-of-week", min: 1, max: 7, names: strings.Fields("SUN MON TUE WED THU FRI SAT")},
	{name: "year", min: 1970, max: 2199},
}

func checkCron(body string) error {
	fields := strings.Split(body, " ")
	if len(fields) != len(cronFields) {
		return fmt.Errorf("cron(%s): %d fields, want 6 (minutes hours day-of-month month day-of-week year)", body, len(fields))
	}
	dom, dow := fields[2] == "?", fields[4] == "?"
	if dom == dow {
		return fmt.Errorf("cron(%s): exactly one of day-of-month and day-of-week must be ?", body)
	}
	for i, f := range fields {
		if err := cronFields[i].check(f); err != nil {
			return fmt.Errorf("cron(%s): %s %q: %w", body, cronFields[i].name, f, err)
		}
	}
	return nil
}

func (c cronField) check(f string) error {
	switch {
	case f == "?":
		if c.name != "day-of-month" && c.name != "day-of-week" {
			return fmt.Errorf("? is for day-of-month or day-of-week only")
		}
		return nil
	case c.name == "day-of-month" && (f == "L" || f == "LW"):
		return nil
	case c.name == "day-of-month" && strings.HasSuffix(f, "W"):
		_, err := c.value(strings.TrimSuffix(f, "W"))
		return err
	case c.name == "day-of-week" && f == "L":
		return nil
	case c.name == "day-of-week" && strings.HasSuffix(f, "L"):
		_, err := c.value(strings.TrimSuffix(f, "L"))
		return err
	case c.name == "day-of-week" && strings.Contains(f, "#"):
		day, nth, _ := strings.Cut(f, "#")
		if _, err := c.value(day); err != nil {
			return err
		}
		if n, err := strconv.Atoi(nth); err != nil || n < 1 || n > 5 || nth != strconv.Itoa(n) {
			return fmt.Errorf("#%s: the week must be 1 to 5", nth)
		}
		return nil
	}
	for item := range strings.SplitSeq(f, ",") {
		if err := c.checkItem(item); err != nil {
			return err
		}
	}
	return nil
}

// checkItem checks one element of a list: *, a value or a range, with an
// optional /increment.
func (c cronField) checkItem(item string) error {
	base, step, hasStep := strings.Cut(item, "/")
	if hasStep {
		n, err := strconv.Atoi(step)
		if err != nil || n < 1 || step != strconv.Itoa(n) || n > c.max {
			return fmt.Errorf("increment %q is not a whole number from 1 to %d", step, c.max)
		}
	}
	if base == "*" {
		return nil
	}
	lo, hi, isRange := strings.Cut(base, "-")
	a, err := c.value(lo)
	if err != nil {
		return err
	}
	if isRange {
		b, err := c.value(hi)
		if err != nil {
			return err
		}
		if b < a {
			return fmt.Errorf("range %s runs backwards", base)
		}
	}
	return nil
}

// value parses a number or name within the field's bounds.
func (c cronField) value(s string) (int, error) {
	for i, n := range c.names {
		if strings.EqualFold(s, n) {
			return c.min + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || s != strconv.Itoa(n) {
		return 0, fmt.Errorf("%q is not a value", s)
	}
	if n < c.min || n > c.max {
		return 0, fmt.Errorf("%d is outside %d-%d", n, c.min, c.max)
	}
	return n, nil
}

func TestCheckSchedule(t *testing.T) {
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{"rate(1 hour)", true},
		{"rate(1 minute)", true},
		{"rate(1 day)", true},
		{"rate(5 minutes)", true},
		{"rate(2 hours)", true},
		{"rate(7 days)", true},
		{"rate(1 hours)", false},
		{"rate(5 hour)", false},
		{"rate(0 hours)", false},
		{"rate(-1 hours)", false},
		{"rate(01 hour)", false},
		{"rate(1.5 hours)", false},
		{"rate(1 week)", false},
		{"rate(1  hour)", false},
		{"rate(hour)", false},
		{"rate 1 hour", false},
		{"rate(1 hour", false},
		{"cron(0 * * * ? *)", true},
		{"cron(15 10 ? * 6L 2026-2030)", true},
		{"cron(0/15 8-17 ? * MON-FRI *)", true},
		{"cron(0 12 L * ? *)", true},
		{"cron(0 12 15W * ? *)", true},
		{"cron(0 9 ? JAN,JUL 2#1 *)", true},
		{"cron(5,35 14 * * ? *)", true},
		{"cron(0 0 1 */3 ? *)", true},
		{"cron(0 * * * * *)", false},  // both day fields given
		{"cron(0 * ? * ? *)", false},  // neither day field given
		{"cron(0 12 * * ?)", false},   // five fields (crontab style)
		{"cron(60 * * * ? *)", false}, // minute out of range
		{"cron(0 24 * * ? *)", false},
		{"cron(0 0 0 * ? *)", false},
		{"cron(0 0 ? 13 * *)", false},
		{"cron(0 0 ? * 8 *)", false},
		{"cron(0 0 ? * MON#6 *)", false},
		{"cron(0 0 ? * FRI-MON *)", false}, // this validator wants ranges to ascend
		{"cron(0 0 * * ? 1969)", false},
		{"cron(0/0 * * * ? *)", false},
		{"cron(0 ? * * * *)", false},
		{"cron(a * * * ? *)", false},
		{"every hour", false},
		{"", false},
	} {
		err := checkSchedule(tc.expr)
		if (err == nil) != tc.ok {
			t.Errorf("checkSchedule(%q) = %v, want ok %v", tc.expr, err, tc.ok)
		}
	}
}

// FuzzCheckSchedule: the validator never panics, and what it accepts has
// the shape EventBridge requires.
func FuzzCheckSchedule(f *testing.F) {
	for _, s := range []string{"rate(1 hour)", "rate(10 minutes)", "cron(0/15 8-17 ? * MON-FRI *)", "cron(0 9 ? JAN,JUL 2#1 *)", "cron(0 12 15W * ? *)", "cron(0 * * * * *)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if checkSchedule(expr) != nil {
			return
		}
		body := expr[5 : len(expr)-1]
		switch expr[:5] {
		case "rate(":
			if len(strings.Split(body, " ")) != 2 {
				t.Fatalf("accepted %q without value and unit", expr)
			}
		case "cron(":
			if len(strings.Split(body, " ")) != 6 {
				t.Fatalf("accepted %q without six fields", expr)
			}
		default:
			t.Fatalf("accepted %q", expr)
		}
	})
}
