<p class="explanation">\\
% for piece, shade, contribution in pieces:
% if shade is None:
{{piece}}\\
% else:
<span class="word {{shade}}" data-contribution="{{'%+.3f' % contribution}}" title="{{'%+.3f' % contribution}} P(toxic)">{{piece}}</span>\\
% end
% end
</p>
