# The simulate populations the bundled model never saw, as `galgen simulate` options (sourced by the
# benchmarks that measure on them: own_survey.sh, inpaint_ood.sh). `population_args A` sets POP.
#
# A: fainter (16-20.5), smaller (x0.7), more bulge-dominated (60 %), redder (+0.08 / +0.05), sharper seeing
#    (0.9-1.1"), a neighbour in 20 % of the stamps.  B: brighter (15-18.5), larger (x1.4), disk-dominated
#    (15 %), bluer (-0.10 / -0.06), worse seeing (1.4-1.7").
population_args() {
    case "$1" in
        A) POP=(--mag-range 16,20.5 --size-scale 0.7 --early-fraction 0.6 --colour-shift 0.08,0.05 --seeing 0.9,1.1
                --neighbours 0.2) ;;
        B) POP=(--mag-range 15,18.5 --size-scale 1.4 --early-fraction 0.15 --colour-shift=-0.10,-0.06 --seeing 1.4,1.7) ;;
        *) echo "${0##*/}: population must be A or B, not $1" >&2; return 2 ;;
    esac
}
