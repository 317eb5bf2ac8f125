"""How right the room is: labelled clips through the room's own pipeline (:mod:`.runner`), read from
corpora in their own layouts (:mod:`.corpora`) or from clinicians' judgements (:mod:`.feedback`),
scored (:mod:`.report`)."""
