% if explanation:
<h2 class="why">Why: what each word does to the probability of the served model, {{default}}</h2>
<div id="explanation" class="explained" data-model="{{default}}">
<p class="explanation">\\
% for piece, shade, contribution in explanation.pieces():
% if shade is None:
{{piece}}\\
% else:
<span class="word {{shade}}" data-contribution="{{'%+.3f' % contribution}}" title="{{'%+.3f' % contribution}} P(toxic)">{{piece}}</span>\\
% end
% end
</p>
</div>
% include('legend.tpl')
% end
