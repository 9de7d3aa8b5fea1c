// Package report turns the region's availability ledger (a list of
// protocol.StatusRecord, the status changes of each component) into
// availability reports for a period: per component its availability, its
// outages with their causes, MTTR and MTBF, written as text (WriteText),
// CSV (WriteCSV, WriteOutagesCSV) or a self-contained HTML page with a
// timeline chart per component (WriteHTML). It does no I/O of its own and
// starts no goroutines: Compute is a pure function of the records, and the
// writers write to the io.Writer they are given.
//
// # Records and their order
//
// Compute is handed every record of the components wanted up to the end
// of the period, including those before its start: the last of those gives
// a component's status when the period starts. A record's Time is when its
// status changed (the time of the event that said so), which may be a
// little out of order with the ledger's Seq (an agent's event that arrived
// late, a heartbeat found missing after a later event was appended), so
// Compute orders each component's records by Time, and records with the
// same Time by Seq (then as given). A record whose status is the
// component's current one is a repeat: it neither starts nor ends an
// outage and is not a change (ComponentReport.Repeats counts those within
// the period). Every other record is a change, and every change counts:
// a component flapping UP, DOWN, UP, DOWN has two outages however short,
// and none is merged with another. Records the store would not have taken
// (a status that is neither UP nor DOWN, a zero Time) are skipped, and so
// are records at or after the period's end.
//
// # Time
//
// The period is [From, To): from included, to excluded, in UTC. When
// Options.Now is set and earlier than to, the period ends at Now instead
// (the rest has not happened yet), and Report.To says so. A period longer
// than MaxPeriod is cut to MaxPeriod; a to before from is an empty period.
//
// Each component's time in the period is one of three kinds:
//
//   - unknown: before the component's status is known. A component with a
//     record before the period is known from its start; one whose first
//     record is within the period is unknown until that record. Unknown
//     time counts neither as up nor as down.
//   - up: known, and the last change said UP.
//   - down: known, and the last change said DOWN.
//
// Monitored = Up + Down = the period − unknown time. The reports show the
// monitored time next to the availability, so that a component first seen
// at noon shows 12 hours monitored, not a day.
//
// # Figures
//
//   - Availability = Up / Monitored × 100, in percent. A component with no
//     monitored time (an empty period; one whose first record is at the
//     end) has Availability −1, shown as "-" (NaN would not survive JSON).
//     The writers show it truncated, not rounded, to three decimals (CSV:
//     six), so that 100.000 means no downtime at all.
//   - An outage is a DOWN period: it starts at the change to DOWN and ends
//     at the next change to UP. Outages are clipped to the period: one that
//     began before the period starts at From and is flagged ClippedStart
//     (Began keeps when it really began); one still open at the end is
//     counted to the end and flagged Open. A DOWN and an UP with the same
//     Time make an outage of zero length: it is counted (records are the
//     changes; flapping is not lost).
//   - Outages (N) are the outages that overlap the period: those that
//     began within it and the one, if any, the component was in when the
//     period started.
//   - Down = the sum of the outages' clipped durations; Longest the longest
//     of them.
//   - MTTR (mean time to repair, or restore) = Down / N, the mean clipped
//     outage duration, open and clipped outages included.
//   - MTBF (mean time between failures) = Up / N.
//
// MTTR and MTBF are the operational definitions of GÉANT's service desk
// (https://wiki.geant.org/display/SD/3.0+Monthly+Statistics: "MTTR = Total
// time of the outages / Total number of outages", "MTBF = (Number of
// Seconds in the month - Total time of the outages) / Total number of
// outages"), and agree with ITIL's MTBF, available time less downtime over
// the number of breaks (http://www.itskeptic.org/node/706, on ITIL Service
// Design), and Wikipedia's "sum of the lengths of the operational periods
// divided by the number of observed failures"
// (https://en.wikipedia.org/wiki/Mean_time_between_failures), taking the
// monitored time for the month and the outages in the period for the
// failures. Dividing both by the same N keeps the textbook identity
// Availability = MTBF / (MTBF + MTTR) exact, so the three figures of a
// report always agree. The price is that an outage carried into the period
// counts as one of its failures, and its clipped part as its repair time:
// a report on a short period that starts in the middle of an outage says
// so (ClippedStart) rather than leaving it out. With no outage, MTTR and
// MTBF are 0 and shown as "-".
//
// Changes counts the records within the period that changed the
// component's status, the first one that made it known included.
//
// # Causes
//
// An outage's Cause is the change identifier of the DOWN record that began
// it (IXC101I, LOGOFF, heartbeat-lost, probe-failed), its Detail that
// record's detail, and DownEvent the event that said so; EndCause,
// EndDetail and UpEvent are the same of the UP record that ended it (empty
// for an open outage).
package report
