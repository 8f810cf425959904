package handlers

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
)

// chartSeries is one line of a chart: a value per day.
type chartSeries struct {
	Name   string
	Color  string
	Values []int64
}

// chartRow is one day of the chart's data table (the chart's text version).
type chartRow struct {
	Day    string
	Values []int64
}

// dailyChart is a line chart of a few series over consecutive days, drawn
// on the server as SVG so it needs no script, with a data table beside it.
type dailyChart struct {
	Days   []time.Time
	Series []chartSeries
}

const (
	chartW, chartH           = 720, 220
	chartLeft, chartRight    = 44, 10
	chartTop, chartBottom    = 10, 26
	chartPlotW               = chartW - chartLeft - chartRight
	chartPlotH               = chartH - chartTop - chartBottom
	chartGridLines           = 4
	chartMaxLabelsOnAxisDays = 8
)

// SVG draws the chart. Every number in it is computed here from integers,
// so the markup carries nothing from user input.
func (ch dailyChart) SVG(title string) template.HTML {
	var max int64 = 1
	for _, s := range ch.Series {
		for _, v := range s.Values {
			if v > max {
				max = v
			}
		}
	}
	top := niceCeil(max)
	n := len(ch.Days)
	x := func(i int) float64 {
		if n <= 1 {
			return chartLeft
		}
		return chartLeft + float64(i)*chartPlotW/float64(n-1)
	}
	y := func(v int64) float64 { return chartTop + chartPlotH - float64(v)*chartPlotH/float64(top) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(title))
	for i := 0; i <= chartGridLines; i++ {
		v := top * int64(i) / chartGridLines
		yy := y(v)
		fmt.Fprintf(&b, `<line class="axis" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, chartLeft, chartW-chartRight, yy, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, chartLeft-6, yy+4, strconv.FormatInt(v, 10))
	}
	step := max1(n / chartMaxLabelsOnAxisDays)
	for i := 0; i < n; i += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(i), chartH-8, ch.Days[i].Format("2 Jan"))
	}
	for _, s := range ch.Series {
		var pts strings.Builder
		for i, v := range s.Values {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(i), y(v))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.Color, strings.TrimSpace(pts.String()))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped text only
}

// Rows returns the chart's data, newest day first, for its table.
func (ch dailyChart) Rows() []chartRow {
	rows := make([]chartRow, 0, len(ch.Days))
	for i := len(ch.Days) - 1; i >= 0; i-- {
		r := chartRow{Day: ch.Days[i].Format("Mon 2 Jan 2006")}
		for _, s := range ch.Series {
			r.Values = append(r.Values, s.Values[i])
		}
		rows = append(rows, r)
	}
	return rows
}

// Totals returns each series' sum over the chart's days.
func (ch dailyChart) Totals() []int64 {
	out := make([]int64, len(ch.Series))
	for i, s := range ch.Series {
		for _, v := range s.Values {
			out[i] += v
		}
	}
	return out
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, for the axis.
func niceCeil(v int64) int64 {
	if v <= 4 {
		return 4
	}
	p := int64(1)
	for p*10 < v {
		p *= 10
	}
	for _, m := range []int64{1, 2, 5, 10} {
		if m*p >= v {
			// Keep the grid lines on whole numbers.
			if c := m * p; c%chartGridLines == 0 {
				return c
			}
			return (m*p + chartGridLines - 1) / chartGridLines * chartGridLines
		}
	}
	return v
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}
