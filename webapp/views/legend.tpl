<p class="meta legend">A word's colour is how much the probability of toxic drops when the comment is
read without it: <span class="word push-toxic-3">red</span> words push toward toxic,
<span class="word push-clean-3">green</span> ones toward not toxic, from pale (a change of 0.02) to
strong (0.5 or more). Hover a word for its number. Two insults that each suffice alone both look
pale: without either, the other still does the job.</p>
